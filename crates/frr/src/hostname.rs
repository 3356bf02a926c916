//! The hostname in FRR's configs: the one thing a reload cannot change
//! (see [`crate::Frr::daemon_hostname`]).

use std::fs;
use std::path::Path;

use crate::FrrError;

/// The `hostname` of a `vtysh.conf`; None when it has none or is missing.
pub(crate) fn vtysh_conf_hostname(path: &Path) -> Result<Option<String>, FrrError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(hostname_lines(&text).last().map(|h| h.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FrrError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// The names of the top-level `hostname NAME` lines of a config.
pub(crate) fn hostname_lines(config: &str) -> impl Iterator<Item = &str> {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("hostname "))
        .map(str::trim)
        .filter(|h| !h.is_empty())
}

/// The daemons' hostname in a running config (see [`crate::Frr::daemon_hostname`]).
pub(crate) fn pick_daemon_hostname(running: &str, vtysh_own: Option<&str>) -> Option<String> {
    let all: Vec<&str> = hostname_lines(running).collect();
    all.iter()
        .find(|h| Some(**h) != vtysh_own)
        .or_else(|| all.first())
        .map(|h| h.to_string())
}

/// `config` with its `hostname` line saying `host` (added after the
/// header lines when it has none).
pub(crate) fn with_hostname(config: &str, host: &str) -> String {
    let wanted = format!("hostname {host}");
    let mut out = String::with_capacity(config.len() + wanted.len() + 1);
    let mut done = false;
    for l in config.lines() {
        if l.starts_with("hostname ") {
            if !done {
                out.push_str(&wanted);
                out.push('\n');
                done = true;
            }
            continue;
        }
        if !(done || l.starts_with('!') || l.starts_with("frr ")) {
            out.push_str(&wanted);
            out.push('\n');
            done = true;
        }
        out.push_str(l);
        out.push('\n');
    }
    if !done {
        out.push_str(&wanted);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_hostname_is_the_one_that_is_not_vtyshs() {
        let running = "frr version 8.4.4\nfrr defaults traditional\nhostname Other-Host\nno ipv6 forwarding\nhostname k8s-1\n!\n";
        let pick = |own| pick_daemon_hostname(running, own);
        assert_eq!(pick(Some("k8s-1")).as_deref(), Some("Other-Host"));
        assert_eq!(pick(Some("Other-Host")).as_deref(), Some("k8s-1"));
        let one = "hostname n1\n";
        assert_eq!(pick_daemon_hostname(one, Some("n1")).as_deref(), Some("n1"));
        assert_eq!(pick_daemon_hostname(one, None).as_deref(), Some("n1"));
        assert_eq!(pick_daemon_hostname("!\n", Some("n1")), None);
    }

    #[test]
    fn hostname_line_replaced_or_added() {
        let c = "! header\nfrr defaults traditional\nhostname k8s-1\nservice integrated-vtysh-config\n!\n";
        assert_eq!(
            with_hostname(c, "Node-1.example.com"),
            "! header\nfrr defaults traditional\nhostname Node-1.example.com\nservice integrated-vtysh-config\n!\n"
        );
        assert_eq!(
            with_hostname("frr defaults traditional\nrouter ospf\n", "h"),
            "frr defaults traditional\nhostname h\nrouter ospf\n"
        );
        assert_eq!(with_hostname("", "h"), "hostname h\n");
    }
}
