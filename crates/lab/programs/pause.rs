//! The lab's Pod sandbox image (what `registry.k8s.io/pause` is in a cluster): it holds a Pod's
//! namespaces open and does nothing else. Built as a static binary by the lab (`src/images.rs`),
//! standalone so that it needs nothing but `rustc` and std.
//!
//! ```text
//!   containerd ── sandbox_image = lab.local/ironlb-lab/pause:1 ── /pause (PID 1 of every Pod)
//! ```

use std::time::Duration;

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
}

extern "C" fn stop(_: i32) {
    // SAFETY: _exit is async-signal-safe, and nothing needs flushing.
    unsafe { _exit(0) }
}

fn main() {
    // As PID 1 of its namespace the process ignores every signal it has no handler for, so
    // without these a stop would wait out the whole grace period and then need SIGKILL.
    for signum in [2, 15] {
        // SAFETY: installs a handler that only calls _exit.
        unsafe { signal(signum, stop) };
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
