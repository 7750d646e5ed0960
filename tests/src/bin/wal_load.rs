//! Load generator for the WAL kill test: appends from several threads and prints one line per
//! acknowledged append, `ACK <thread> <seq> <first_lsn> <end_lsn>`, only after its ticket completed
//! (durable in `sync` mode). Runs until killed.
//!
//! Usage: hydrant-wal-load DIR THREADS SEGMENT_BYTES

use std::io::Write;
use std::sync::{Arc, Mutex};

use hydrant_tests::load_record;
use hydrant_wal::{Wal, WalOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("hydrant-wal-load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: hydrant-wal-load DIR THREADS SEGMENT_BYTES".into());
    }
    let threads: u64 = args[2].parse()?;
    let segment_bytes: u64 = args[3].parse()?;
    let options = WalOptions {
        segment_bytes,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&args[1], options)?;
    let wal = Arc::new(wal);
    let out = Arc::new(Mutex::new(std::io::stdout()));
    println!("READY");
    std::io::stdout().flush()?;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let wal = wal.clone();
            let out = out.clone();
            std::thread::spawn(move || -> Result<(), String> {
                for seq in 0u64.. {
                    let n = 1 + (t + seq) % 8;
                    let records: Vec<Vec<u8>> = (0..n).map(|i| load_record(t, seq, i)).collect();
                    let range = wal
                        .append(&records)
                        .and_then(hydrant_wal::Ticket::wait)
                        .map_err(|e| e.to_string())?;
                    let mut o = out.lock().map_err(|e| e.to_string())?;
                    writeln!(o, "ACK {t} {seq} {} {}", range.start, range.end)
                        .map_err(|e| e.to_string())?;
                    o.flush().map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "appender panicked")??;
    }
    Ok(())
}
