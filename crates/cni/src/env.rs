//! The execution environment: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH`, parsed and validated the way
//! libcni's skel does, before anything is changed.

use std::path::PathBuf;

use crate::error::{CniError, Code};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }

    /// ADD, CHECK and DEL act on one attachment (container ID + ifname).
    pub fn is_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Check | Command::Del)
    }
}

/// The validated environment of one plugin invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    /// Empty for VERSION, STATUS and GC.
    pub container_id: String,
    /// `None` when `CNI_NETNS` is empty (allowed for DEL).
    pub netns: Option<PathBuf>,
    /// Empty for VERSION, STATUS and GC.
    pub ifname: String,
    /// `CNI_ARGS` as key/value pairs, in the order given.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH`, split on ':'.
    pub path: Vec<PathBuf>,
}

fn env_err(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidEnvironment, msg)
}

impl Env {
    /// Read the environment through `get` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let var = |k: &str| get(k).unwrap_or_default();
        let cmd = var("CNI_COMMAND");
        if cmd.is_empty() {
            return Err(env_err("required env variable CNI_COMMAND missing"));
        }
        let command =
            Command::parse(&cmd).ok_or_else(|| env_err(format!("unknown CNI_COMMAND: {cmd:?}")))?;
        // VERSION, STATUS and GC act on no attachment: whatever these hold
        // then is neither validated nor passed on.
        let attachment = |k: &str| {
            if command.is_attachment() {
                var(k)
            } else {
                String::new()
            }
        };
        let container_id = attachment("CNI_CONTAINERID");
        let ifname = attachment("CNI_IFNAME");
        let netns = attachment("CNI_NETNS");
        let path = var("CNI_PATH");

        if command.is_attachment() {
            let mut missing = Vec::new();
            for (name, value) in [
                ("CNI_CONTAINERID", &container_id),
                ("CNI_IFNAME", &ifname),
                ("CNI_PATH", &path),
            ] {
                if value.is_empty() {
                    missing.push(name);
                }
            }
            if command != Command::Del && netns.is_empty() {
                missing.push("CNI_NETNS");
            }
            if !missing.is_empty() {
                return Err(env_err(format!(
                    "required env variables [{}] missing",
                    missing.join(",")
                )));
            }
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
            if !netns.is_empty() && !netns.starts_with('/') {
                return Err(env_err("CNI_NETNS must be an absolute path").with_details(netns));
            }
        }

        Ok(Env {
            command,
            container_id,
            netns: (!netns.is_empty()).then(|| PathBuf::from(netns)),
            ifname,
            args: parse_args(&var("CNI_ARGS"))?,
            path: path
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        })
    }

    /// The value of `key` in `CNI_ARGS`, if given.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `K=V;K2=V2` as libcni writes it. Empty segments are ignored.
pub fn parse_args(s: &str) -> Result<Vec<(String, String)>, CniError> {
    s.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(env_err("CNI_ARGS: invalid pair").with_details(pair.to_string())),
        })
        .collect()
}

/// A container ID is `[A-Za-z0-9][A-Za-z0-9_.-]*`: it becomes part of file
/// names, so nothing else may pass.
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(env_err("invalid characters in CNI_CONTAINERID").with_details(id.to_string()))
    }
}

/// A Linux interface name: 1 to 15 bytes, not `.` or `..`, no `/`, `:` or
/// whitespace.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let why = if name.is_empty() {
        "interface name is empty"
    } else if name.len() > 15 {
        "interface name is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "interface name may not be . or .."
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        "interface name contains '/', ':' or whitespace"
    } else {
        return Ok(());
    };
    Err(env_err(why).with_details(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, CniError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_lookup(|k| map.get(k).cloned())
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.7"),
    ];

    #[test]
    fn parses_a_full_add() {
        let e = env(ADD).unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(
            e.netns.as_deref(),
            Some(std::path::Path::new("/run/netns/x"))
        );
        assert_eq!(e.path.len(), 2);
        assert_eq!(e.arg("IP"), Some("10.0.0.7"));
        assert_eq!(e.arg("K8S_POD_NAME"), Some("web"));
        assert_eq!(e.arg("nope"), None);
    }

    fn with(key: &str, value: &str) -> Vec<(&'static str, String)> {
        ADD.iter()
            .map(|(k, v)| {
                (
                    *k,
                    if *k == key {
                        value.to_string()
                    } else {
                        v.to_string()
                    },
                )
            })
            .collect()
    }

    fn env_owned(pairs: Vec<(&str, String)>) -> Result<Env, CniError> {
        let map: HashMap<String, String> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Env::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn rejects_bad_environment_with_code_4() {
        let long = "x".repeat(16);
        let bad = [
            ("CNI_COMMAND", ""),
            ("CNI_COMMAND", "ATTACH"),
            ("CNI_CONTAINERID", ""),
            ("CNI_CONTAINERID", "../../etc"),
            ("CNI_CONTAINERID", "-abc"),
            ("CNI_CONTAINERID", "a b"),
            ("CNI_IFNAME", ""),
            ("CNI_IFNAME", long.as_str()),
            ("CNI_IFNAME", "eth/0"),
            ("CNI_IFNAME", "eth:0"),
            ("CNI_IFNAME", "eth 0"),
            ("CNI_IFNAME", ".."),
            ("CNI_NETNS", ""),
            ("CNI_NETNS", "relative/ns"),
            ("CNI_PATH", ""),
            ("CNI_ARGS", "novalue"),
            ("CNI_ARGS", "=x"),
        ];
        for (k, v) in bad {
            let err = env_owned(with(k, v)).expect_err(&format!("{k}={v:?} must fail"));
            assert_eq!(err.code, Code::InvalidEnvironment, "{k}={v:?}");
        }
    }

    #[test]
    fn del_may_have_empty_netns() {
        let e = env_owned(with("CNI_NETNS", "")).map(|_| ());
        assert!(e.is_err(), "ADD needs a netns");
        let mut pairs = with("CNI_NETNS", "");
        pairs[0].1 = "DEL".into();
        let e = env_owned(pairs).unwrap();
        assert_eq!(e.netns, None);
    }

    #[test]
    fn version_status_and_gc_need_only_the_command() {
        for c in ["VERSION", "STATUS", "GC"] {
            let e = env(&[("CNI_COMMAND", c)]).unwrap();
            assert!(e.container_id.is_empty());
            // Found by fuzzing: an attachment's variables, unvalidated,
            // used to be passed on for these commands.
            let e = env(&[
                ("CNI_COMMAND", c),
                ("CNI_CONTAINERID", "../../etc"),
                ("CNI_NETNS", "relative"),
                ("CNI_IFNAME", "a/b"),
            ])
            .unwrap();
            assert_eq!((e.container_id.as_str(), e.ifname.as_str()), ("", ""));
            assert_eq!(e.netns, None);
        }
    }

    #[test]
    fn ifname_limits() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname(&"a".repeat(15)).is_ok());
        assert!(validate_ifname(&"a".repeat(16)).is_err());
        assert!(validate_ifname("net1\t").is_err());
    }
}
