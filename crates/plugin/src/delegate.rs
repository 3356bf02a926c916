//! Running another plugin (a delegated IPAM such as `host-local`) the way
//! the spec says: found by plain name in `CNI_PATH`, given the same
//! environment with `CNI_COMMAND` set, and the same config on stdin.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use ferry_cni::config::is_plain_name;
use ferry_cni::{CniError, Code, Command};
use serde::Deserialize;

/// Find `plugin` in the `CNI_PATH` directories. The name is never a path.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    if !is_plain_name(plugin) {
        return Err(CniError::new(
            Code::InvalidNetworkConfig,
            "plugin type must be a plain name, not a path",
        )
        .with_details(plugin.to_string()));
    }
    path.iter()
        .map(|dir| dir.join(plugin))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            CniError::new(
                Code::Delegate,
                format!("failed to find plugin {plugin:?} in CNI_PATH"),
            )
            .with_details(
                path.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            )
        })
}

#[derive(Deserialize)]
struct WireError {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: Option<String>,
}

/// Run `binary` for `command` with `stdin`; its stdout on success. A failing
/// delegate's own error is passed on: the spec's codes keep their meaning
/// (e.g. 11 stays "try again"), anything else becomes ferry's code 103.
pub fn exec(binary: &Path, command: Command, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |msg: String| CniError::new(Code::Delegate, msg);
    let mut child = Process::new(binary)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("cannot run {name}: {e}")))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .map_err(|e| fail(format!("cannot write config to {name}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for {name}: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    match serde_json::from_slice::<WireError>(&out.stdout) {
        Ok(w) => {
            let code = match w.code {
                1 => Code::IncompatibleVersion,
                2 => Code::UnsupportedField,
                3 => Code::UnknownContainer,
                4 => Code::InvalidEnvironment,
                5 => Code::IoFailure,
                6 => Code::DecodingFailure,
                7 => Code::InvalidNetworkConfig,
                11 => Code::TryAgainLater,
                50 => Code::NotAvailable,
                51 => Code::NotAvailableLimitedConnectivity,
                _ => Code::Delegate,
            };
            let mut e = CniError::new(code, format!("{name}: {}", w.msg));
            e.details = w.details.filter(|d| !d.is_empty());
            Err(e)
        }
        Err(_) => Err(fail(format!("{name} failed ({})", out.status))
            .with_details(String::from_utf8_lossy(&out.stdout).trim().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_resolves_a_path() {
        let path = vec![PathBuf::from("/usr/bin")];
        for bad in ["../sh", "/bin/sh", "a/b", ""] {
            let e = find(bad, &path).unwrap_err();
            assert_eq!(e.code, Code::InvalidNetworkConfig, "{bad}");
        }
    }

    #[test]
    fn finds_executables_only() {
        let dir = std::env::temp_dir().join(format!("ferry-delegate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plain"), "x").unwrap();
        let path = vec![PathBuf::from("/nonexistent"), dir.clone()];
        assert_eq!(find("plain", &path).unwrap_err().code, Code::Delegate);
        std::fs::set_permissions(dir.join("plain"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(find("plain", &path).unwrap(), dir.join("plain"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passes_on_a_delegates_error() {
        let dir = std::env::temp_dir().join(format!("ferry-delegate-err-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("failing");
        std::fs::write(
            &script,
            "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"busy\"}'\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = exec(&script, Command::Add, b"{}").unwrap_err();
        assert_eq!(e.code, Code::TryAgainLater);
        assert!(e.msg.contains("busy"), "{}", e.msg);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
