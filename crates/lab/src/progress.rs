//! Progress lines for long work: one line per step with the elapsed time.

use std::time::Instant;

/// Prints `[<label> 12.3s] step` lines to stderr.
#[derive(Debug)]
pub struct Progress {
    label: String,
    start: Instant,
    quiet: bool,
}

impl Progress {
    /// Starts the clock.
    pub fn new(label: &str) -> Self {
        Progress {
            label: label.to_string(),
            start: Instant::now(),
            quiet: false,
        }
    }

    /// A progress that prints nothing (tests that start many labs).
    pub fn quiet(label: &str) -> Self {
        Progress {
            quiet: true,
            ..Progress::new(label)
        }
    }

    /// Prints one step.
    pub fn step(&mut self, what: &str) {
        if !self.quiet {
            eprintln!(
                "[{} {:6.1}s] {what}",
                self.label,
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    /// Seconds since the start.
    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}
