//! Network namespaces.

use crate::cvt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Moves the calling thread into the network namespace at `path` (e.g.
/// `/run/netns/<name>` or `/proc/<pid>/ns/net`). Other threads of the process are not affected;
/// sockets the thread opens afterwards belong to that namespace for their whole life.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: setns only reads the descriptor, which `file` keeps open for the call.
    cvt(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// The path of a namespace made by `ip netns add NAME`.
pub fn named_netns_path(name: &str) -> std::path::PathBuf {
    Path::new("/run/netns").join(name)
}
