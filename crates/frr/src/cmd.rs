//! Running vtysh and frr-reload.py: bounded in time, errors that carry the
//! command line and its output, secrets taken out of both.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::FrrError;

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `program args..`, killing it after `timeout`. A spawn failure or a
/// timeout is an error; a non-zero exit is not (see [`check`]).
pub(crate) fn run(
    program: &str,
    args: &[String],
    timeout: Duration,
    secrets: &[String],
) -> Result<Output, FrrError> {
    let command = redact(&format!("{program} {}", args.join(" ")), secrets);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FrrError::Spawn {
            command: command.clone(),
            source,
        })?;
    let readers = [
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    ]
    .map(|r| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FrrError::Timeout { command, timeout });
            }
        }
    };
    let [out, err] = readers.map(|h| h.join().unwrap_or_default());
    Ok(Output {
        status: status.code().unwrap_or(-1),
        stdout: redact(&out, secrets),
        stderr: redact(&err, secrets),
    })
}

/// Run and require exit status 0.
pub(crate) fn check(
    program: &str,
    args: &[String],
    timeout: Duration,
    secrets: &[String],
) -> Result<Output, FrrError> {
    let out = run(program, args, timeout, secrets)?;
    if out.status != 0 {
        return Err(failed(program, args, &out, secrets));
    }
    Ok(out)
}

pub(crate) fn failed(program: &str, args: &[String], out: &Output, secrets: &[String]) -> FrrError {
    // frr-reload.py --test prints a meaningless diff next to its error;
    // --reload --stdout has everything on stdout.
    let text = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    FrrError::Command {
        command: redact(&format!("{program} {}", args.join(" ")), secrets),
        status: out.status,
        output: strip_ansi(text.trim()),
    }
}

/// Without terminal colour sequences (frr-reload.py colours its errors).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The secrets in an FRR config: OSPF keys and BGP passwords.
pub(crate) fn secrets_in(config: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in config.lines() {
        let words: Vec<&str> = l.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let prev = |n: usize| if i >= n { words[i - n] } else { "" };
            // `md5 KEY`, `password PW`, `authentication-key KEY`, and the
            // OSPFv3 `hash-algo md5 key KEY`.
            let secret = match prev(1) {
                "md5" => *w != "key",
                "password" | "authentication-key" => true,
                "key" => prev(2) == "md5",
                _ => false,
            };
            if secret && !out.iter().any(|s| s == w) {
                out.push(w.to_string());
            }
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// `text` with every secret replaced.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            t = t.replace(s.as_str(), "<redacted>");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_redacts_secrets() {
        let conf = "interface eth0\n ip ospf message-digest-key 1 md5 k3y!\n ipv6 ospf6 authentication key-id 1 hash-algo md5 key six6\nrouter bgp 1\n neighbor ferry password pa55x\n";
        let s = secrets_in(conf);
        assert_eq!(s, ["pa55x", "k3y!", "six6"]);
        let r = redact(conf, &s);
        assert!(
            !r.contains("k3y!") && !r.contains("pa55") && !r.contains("six6"),
            "{r}"
        );
        assert!(r.contains("md5 key <redacted>"), "{r}");
        assert!(r.contains("md5 <redacted>"));
    }

    #[test]
    fn errors_carry_command_and_output() {
        let err = check(
            "sh",
            &["-c".into(), "echo oops-k3y >&2; exit 3".into()],
            Duration::from_secs(10),
            &["k3y".into()],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("sh -c") && msg.contains("oops-<redacted>"),
            "{msg}"
        );
        assert!(msg.contains("status 3"), "{msg}");
        assert!(!msg.contains("k3y"), "{msg}");
    }

    #[test]
    fn colours_are_stripped() {
        assert_eq!(strip_ansi("a \x1b[91m  ERROR\x1b[0m: b"), "a   ERROR: b");
    }

    #[test]
    fn slow_commands_are_killed() {
        let err = run("sleep", &["30".into()], Duration::from_millis(200), &[]).unwrap_err();
        assert!(matches!(err, FrrError::Timeout { .. }), "{err}");
    }
}
