//! `ferry-ipam` as its own IPAM plugin, for any plugin that delegates
//! (e.g. `bridge`): the same allocator `ferry` runs in-process.

use std::collections::HashSet;

use ferry_cni::version::VersionInfo;
use ferry_cni::{CniError, Code, Command, Env, NetConf, Version};
use ferry_ipam::IpamConfig;

use crate::conf::requested_ips;
use crate::ipam::Builtin;
use crate::run::{require_verb, Outcome};

pub fn run(get: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Outcome {
    let version = ferry_cni::config::peek_version(stdin).unwrap_or(Version::LATEST);
    match dispatch(get, stdin) {
        Ok(stdout) => Outcome {
            stdout,
            success: true,
        },
        Err(e) => Outcome {
            stdout: e.to_json(version),
            success: false,
        },
    }
}

fn dispatch(get: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Result<String, CniError> {
    let env = Env::from_lookup(get)?;
    if env.command == Command::Version {
        let requested = ferry_cni::config::peek_version(stdin).map(|v| v.as_str());
        return serde_json::to_string(&VersionInfo::for_request(requested))
            .map_err(|e| CniError::new(Code::IoFailure, e.to_string()));
    }
    let net = NetConf::parse(stdin)?;
    require_verb(env.command, net.cni_version)?;
    let cfg = IpamConfig::from_value(&net.raw["ipam"], &net.name).map_err(|e| {
        CniError::new(Code::InvalidNetworkConfig, "invalid ipam config").with_details(e.to_string())
    })?;
    let ipam = Builtin {
        cfg: &cfg,
        env: &env,
    };
    match env.command {
        Command::Add => {
            let result = ipam.add(requested_ips(&env, &net)?)?;
            Ok(result.to_json(net.cni_version))
        }
        Command::Del => ipam.del().map(|()| String::new()),
        Command::Check => ipam.check().map(|()| String::new()),
        Command::Gc => {
            let valid: HashSet<(String, String)> = net
                .valid_attachments
                .iter()
                .flatten()
                .map(|a| (a.container_id.clone(), a.ifname.clone()))
                .collect();
            ipam.gc(&valid).map(|()| String::new())
        }
        Command::Status => ipam.status().map(|()| String::new()),
        Command::Version => unreachable!("answered above"),
    }
}
