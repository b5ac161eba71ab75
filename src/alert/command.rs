//! Sending an alert to a command: the program of `run = [...]` is started
//! with its arguments, gets the incident's JSON document on stdin, and has
//! delivered it when it exits 0 within the timeout. A command that takes
//! longer is killed. Its stdout is discarded; the end of its stderr is kept
//! for the history's record of a failure.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Failure;

/// How much of a failing command's stderr is kept.
const STDERR_KEPT: usize = 300;

/// One attempt: runs `argv` with `body` on stdin, in `dir` (the config's
/// directory, where a relative program path starts).
pub fn run(
    argv: &[String],
    dir: Option<&Path>,
    body: &[u8],
    timeout: Duration,
) -> Result<(), Failure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::permanent("run = [] names no program".into()));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    // Its own process group, so that a timeout kills what it started too
    // (a shell's children would otherwise hold the pipes open).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::permanent(format!("cannot start {program:?}: {e}")))?;
    // Both pipes in threads: a command that reads nothing, or writes much
    // to stderr, must not stall the writer.
    let input = child.stdin.take().map(|mut stdin| {
        let body = body.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        })
    });
    let (tx, errors) = std::sync::mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            let _ = tx.send(all);
        });
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: signals the group this call created.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // A process it left behind may hold the pipes: wait for them briefly.
    drop(input);
    let stderr = errors
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    let tail = String::from_utf8_lossy(&stderr);
    let tail = tail.trim();
    let tail: String = tail
        .char_indices()
        .rev()
        .take_while(|(i, _)| tail.len() - i <= STDERR_KEPT)
        .map(|(_, c)| c)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(Failure::retry(format!(
            "{program:?} exited with {s}{}",
            match tail.is_empty() {
                true => String::new(),
                false => format!(": {tail}"),
            }
        ))),
        None => Err(Failure::retry(format!(
            "{program:?} did not finish within {}s and was killed",
            timeout.as_secs_f64()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].map(String::from).to_vec()
    }

    #[test]
    fn stdin_exit_codes_and_timeouts() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("got");
        let argv = sh(&format!("cat > {}", out.display()));
        run(&argv, None, b"{\"a\":1}", Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"a\":1}");
        let e = run(
            &sh("echo nope >&2; exit 3"),
            None,
            b"",
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.retry && e.message.contains("nope"), "{}", e.message);
        let t = Instant::now();
        let e = run(&sh("sleep 5"), None, b"", Duration::from_millis(200)).unwrap_err();
        assert!(e.message.contains("killed"), "{}", e.message);
        assert!(t.elapsed() < Duration::from_secs(4));
        let e = run(
            &["/no/such/program".to_string()],
            None,
            b"",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(!e.retry);
    }
}
