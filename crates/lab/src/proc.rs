//! Running commands: one-shot commands with good errors, commands inside a network namespace, and
//! long-running daemons detached into their own process group with a pid file and a log file.

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Runs `program args…` and returns its stdout; a non-zero exit is an error carrying stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    check(program, args, out)
}

/// Turns a finished command's output into its stdout, or an error quoting the command and stderr.
pub fn check(program: &str, args: &[&str], out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with `input` on its stdin and returns its output (stdout and stderr captured).
pub fn output_with_input(mut cmd: Command, input: &[u8]) -> Result<Output> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    child
        .stdin
        .take()
        .context("the child has no stdin")?
        .write_all(input)?;
    Ok(child.wait_with_output()?)
}

/// A command that runs inside network namespace `netns` (via `ip netns exec`).
pub fn in_netns(netns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).args(args);
    cmd
}

/// Runs `args…` inside `netns` and returns stdout; a non-zero exit is an error.
pub fn run_in(netns: &str, args: &[&str]) -> Result<String> {
    let out = in_netns(netns, args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {args:?} in {netns}"))?;
    check(&format!("ip netns exec {netns}"), args, out)
}

/// A daemon the lab started: its pid file and log live in the lab's directory.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Short name, used for the pid and log file names.
    pub name: String,
    /// `<dir>/<name>.pid`.
    pub pid_file: PathBuf,
    /// `<dir>/<name>.log`.
    pub log_file: PathBuf,
}

impl Daemon {
    /// The daemon called `name` whose files live in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Daemon {
            name: name.to_string(),
            pid_file: dir.join(format!("{name}.pid")),
            log_file: dir.join(format!("{name}.log")),
        }
    }

    /// The recorded pid, if the pid file exists and parses.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the recorded process is still alive (and not a zombie).
    pub fn is_running(&self) -> bool {
        self.pid().is_some_and(pid_alive)
    }

    /// Starts `cmd` detached in its own process group, stdout and stderr appended to the log.
    /// Does nothing if the daemon is already running.
    pub fn start(&self, mut cmd: Command) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("cannot open {}", self.log_file.display()))?;
        let child = {
            use std::os::unix::process::CommandExt;
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0)
                .spawn()
                .with_context(|| format!("cannot start {}", self.name))?
        };
        std::fs::write(&self.pid_file, child.id().to_string())?;
        // Kept so that `stop` can reap it; a daemon outliving this process is reaped by init.
        children().insert(child.id() as i32, child);
        Ok(())
    }

    /// Stops the daemon's whole process group: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&self, grace: Duration) {
        if let Some(pid) = self.pid() {
            stop_group(pid, grace);
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// Fails with the tail of the log if the daemon has exited.
    pub fn ensure_running(&self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        bail!(
            "{} exited; last lines of {}:\n{}",
            self.name,
            self.log_file.display(),
            log_tail(&self.log_file, 20)
        )
    }
}

/// The last `n` lines of a log file (empty if unreadable).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether `pid` names a live process that is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // A zombie still answers signal 0; its state letter in /proc/<pid>/stat is Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// SIGTERM the process group `pgid` (and the process itself), wait up to `grace`, then SIGKILL.
pub fn stop_group(pgid: i32, grace: Duration) {
    let pid = Pid::from_raw(pgid);
    let _ = killpg(pid, Signal::SIGTERM);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while pid_alive(pgid) && Instant::now() < deadline {
        reap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = kill(pid, Signal::SIGKILL);
    reap();
}

/// Stops every process inside a network namespace (before the namespace is deleted).
pub fn kill_netns_processes(netns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", netns]) else {
        return;
    };
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(20));
    reap();
}

/// The daemons this process started, so their exit can be collected. Only these are reaped:
/// a blanket `waitpid(-1)` would steal the exit status of other threads' commands.
fn children() -> std::sync::MutexGuard<'static, HashMap<i32, Child>> {
    static CHILDREN: OnceLock<Mutex<HashMap<i32, Child>>> = OnceLock::new();
    CHILDREN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Collects the daemons of ours that have exited, so they do not linger as zombies.
fn reap() {
    children().retain(|_, child| !matches!(child.try_wait(), Ok(Some(_)) | Err(_)));
}
