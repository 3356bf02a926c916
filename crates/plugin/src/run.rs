//! The plugin's edge: environment and stdin in, result or error JSON out.

use std::io::{Read, Write};

use ferry_cni::config::peek_version;
use ferry_cni::version::VersionInfo;
use ferry_cni::{CniError, Code, Command, Env, Version};

use crate::cmd::{self, Invocation};
use crate::conf::PluginConf;
use crate::log;

/// What an invocation printed and how it should exit.
pub struct Outcome {
    pub stdout: String,
    pub success: bool,
}

/// Run one invocation of `ferry` from its environment and stdin.
pub fn run(get: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Outcome {
    let version = peek_version(stdin).unwrap_or(Version::LATEST);
    match dispatch(get, stdin) {
        Ok(stdout) => Outcome {
            stdout,
            success: true,
        },
        Err(e) => {
            crate::log_at!(Error, "{e}");
            Outcome {
                stdout: e.to_json(version),
                success: false,
            }
        }
    }
}

fn dispatch(get: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Result<String, CniError> {
    let env = Env::from_lookup(get)?;
    if env.command == Command::Version {
        let requested = serde_json::from_slice::<serde_json::Value>(stdin)
            .ok()
            .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string));
        let info = VersionInfo::for_request(requested.as_deref());
        return serde_json::to_string(&info)
            .map_err(|e| CniError::new(Code::IoFailure, e.to_string()));
    }
    let conf = PluginConf::parse(stdin)?;
    if let Some(path) = &conf.log_file {
        let context = format!(
            "{} {}/{}",
            env.command.as_str(),
            env.container_id,
            env.ifname
        );
        log::init(path, conf.log_level, context);
    }
    let version = conf.net.cni_version;
    require_verb(env.command, version)?;
    let inv = Invocation {
        env: &env,
        conf: &conf,
        stdin,
    };
    match env.command {
        Command::Add => cmd::add(&inv).map(|r| r.to_json(version)),
        Command::Del => cmd::del(&inv).map(|()| String::new()),
        Command::Check => cmd::check(&inv).map(|()| String::new()),
        Command::Gc => cmd::gc(&inv).map(|()| String::new()),
        Command::Status => cmd::status(&inv).map(|()| String::new()),
        Command::Version => unreachable!("answered above"),
    }
}

/// CHECK exists from 0.4.0, GC and STATUS from 1.1.0.
pub fn require_verb(command: Command, version: Version) -> Result<(), CniError> {
    let ok = match command {
        Command::Check => version.has_check(),
        Command::Gc | Command::Status => version.has_gc_and_status(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            Code::IncompatibleVersion,
            format!(
                "config version {version} does not allow {}",
                command.as_str()
            ),
        ))
    }
}

/// The process edge shared by both binaries: read stdin, run, print, exit.
pub fn main_with(run: fn(&[u8]) -> Outcome) -> ! {
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let out = run(&stdin);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(if out.success { 0 } else { 1 })
}
