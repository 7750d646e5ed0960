//! Progress bars (indicatif) on standard error, shared by `replay` and `put`. indicatif draws
//! nothing when standard error is not a terminal, so scripts and tests see only the summaries.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting records towards `total`, with a message slot for bytes and rate, and an ETA.
/// Hidden when `quiet`.
pub fn records_bar(total: u64, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(4)
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    // The template is a constant; should indicatif ever refuse it, the default style still works.
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} records {msg} \
         {per_sec} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `12.3 MiB (4.5 MiB/s)`: bytes so far and their rate.
pub fn bytes_message(bytes: u64, seconds: f64) -> String {
    let rate = if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    };
    format!(
        "{} ({}/s)",
        indicatif::HumanBytes(bytes),
        indicatif::HumanBytes(rate as u64)
    )
}

/// A bar counting bytes towards `total` (unknown: a spinner), with a message slot for records.
/// Hidden when `quiet`.
pub fn bytes_bar(total: Option<u64>, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(4)
    };
    let bar = ProgressBar::with_draw_target(total, target);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {msg} {bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
