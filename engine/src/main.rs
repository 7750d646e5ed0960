fn main() {
    eprintln!("hydrantd: the API daemon is not implemented yet");
    std::process::exit(2);
}
