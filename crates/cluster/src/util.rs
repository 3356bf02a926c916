//! Small helpers: atomic files, commands, waiting.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{ClusterError, Result};

/// Writes `path` atomically (temp file + rename) with `mode`, creating
/// the parent directory.
pub fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(ClusterError::io("creating", dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(ClusterError::io("creating", &tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(ClusterError::io("chmod", &tmp))?;
    f.write_all(content)
        .map_err(ClusterError::io("writing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(ClusterError::io("renaming into", path))
}

pub fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(ClusterError::io("creating", path))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd`, feeding `stdin`; its stdout, or an error with its output.
pub fn run_with_input(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| ClusterError::Command {
        command: describe(cmd),
        output: e.to_string(),
    })?;
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        let _ = w.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ClusterError::Command {
            command: describe(cmd),
            output: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Command {
            command: describe(cmd),
            output: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        })
    }
}

pub fn run(cmd: &mut Command) -> Result<String> {
    run_with_input(cmd, None)
}

/// Polls `f` every `every` until it gives `Some`, for at most `limit`.
/// `last` describes the last state seen, for the timeout's message.
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut(&mut String) -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        if let Some(v) = f(&mut last) {
            return Ok(v);
        }
        if start.elapsed() >= limit {
            return Err(ClusterError::Timeout {
                what: what.into(),
                secs: limit.as_secs(),
                detail: if last.is_empty() {
                    String::new()
                } else {
                    format!(" (last: {last})")
                },
            });
        }
        std::thread::sleep(every);
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
