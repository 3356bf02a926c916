//! Addresses for an attachment: the built-in allocator (`ferry-ipam`, in
//! this process) or a delegated IPAM plugin exec'd from `CNI_PATH`.

use std::collections::HashSet;

use ferry_cni::result::{IpConfig, Route};
use ferry_cni::{CniError, CniResult, Code, Command, Env};
use ferry_ipam::{DiskStore, IpamConfig, IpamError, Request};

use crate::conf::{requested_ips, IpamKind, PluginConf};
use crate::delegate;

/// The spec's code for an allocator error.
pub fn ipam_error(e: IpamError) -> CniError {
    let code = if e.is_config() {
        Code::InvalidNetworkConfig
    } else if e.is_try_again() {
        Code::TryAgainLater
    } else if e.is_exhausted() {
        Code::AddressesExhausted
    } else {
        match e {
            IpamError::AddressInUse { .. }
            | IpamError::NotInRange { .. }
            | IpamError::NotAllocatable { .. }
            | IpamError::SameRangeSet { .. } => Code::AddressUnavailable,
            IpamError::NotReserved { .. } => Code::CheckFailed,
            _ => Code::IpamStore,
        }
    };
    CniError::new(code, e.to_string())
}

fn store(cfg: &IpamConfig) -> Result<DiskStore, CniError> {
    DiskStore::for_config(cfg).map_err(ipam_error)
}

/// The built-in allocator for one invocation.
pub struct Builtin<'a> {
    pub cfg: &'a IpamConfig,
    pub env: &'a Env,
}

impl Builtin<'_> {
    pub fn add(&self, requested: Vec<std::net::IpAddr>) -> Result<CniResult, CniError> {
        let req = Request {
            container_id: self.env.container_id.clone(),
            ifname: self.env.ifname.clone(),
            requested,
        };
        let alloc =
            ferry_ipam::allocate(&mut store(self.cfg)?, self.cfg, &req).map_err(ipam_error)?;
        Ok(CniResult {
            ips: alloc
                .ips
                .iter()
                .map(|ip| IpConfig {
                    interface: None,
                    address: ip.address,
                    gateway: ip.gateway,
                })
                .collect(),
            routes: alloc
                .routes
                .iter()
                .map(|r| Route::new(r.dst, r.gw))
                .collect(),
            ..Default::default()
        })
    }

    pub fn del(&self) -> Result<(), CniError> {
        ferry_ipam::release(
            &mut store(self.cfg)?,
            &self.env.container_id,
            &self.env.ifname,
        )
        .map(drop)
        .map_err(ipam_error)
    }

    pub fn check(&self) -> Result<(), CniError> {
        ferry_ipam::check(
            &mut store(self.cfg)?,
            self.cfg,
            &self.env.container_id,
            &self.env.ifname,
        )
        .map(drop)
        .map_err(ipam_error)
    }

    pub fn gc(&self, valid: &HashSet<(String, String)>) -> Result<(), CniError> {
        ferry_ipam::gc(&mut store(self.cfg)?, valid)
            .map(drop)
            .map_err(ipam_error)
    }

    pub fn status(&self) -> Result<(), CniError> {
        let unavailable = |e: CniError| CniError::new(Code::NotAvailable, e.msg);
        let mut s = store(self.cfg).map_err(unavailable)?;
        ferry_ipam::status(&mut s, self.cfg).map_err(|e| unavailable(ipam_error(e)))
    }
}

/// IPAM for one ferry invocation, whichever kind the config names.
pub struct Ipam<'a> {
    pub conf: &'a PluginConf,
    pub env: &'a Env,
    pub stdin: &'a [u8],
}

impl Ipam<'_> {
    fn delegate(&self, plugin: &str, command: Command) -> Result<Vec<u8>, CniError> {
        let binary = delegate::find(plugin, &self.env.path)?;
        delegate::exec(&binary, command, self.stdin)
    }

    /// Allocate. The result holds the IPs (with the range's prefix), the
    /// configured routes and DNS.
    pub fn add(&self) -> Result<CniResult, CniError> {
        match &self.conf.ipam {
            IpamKind::Builtin(cfg) => {
                Builtin { cfg, env: self.env }.add(requested_ips(self.env, &self.conf.net)?)
            }
            IpamKind::Delegate(plugin) => {
                let out = self.delegate(plugin, Command::Add)?;
                let result = CniResult::from_slice(&out).map_err(|e| {
                    CniError::new(
                        Code::Delegate,
                        format!("{plugin} returned an unreadable result"),
                    )
                    .with_details(e.to_string())
                })?;
                if result.ips.is_empty() {
                    return Err(CniError::new(
                        Code::Delegate,
                        format!("{plugin} returned no IPs"),
                    ));
                }
                Ok(result)
            }
        }
    }

    pub fn del(&self) -> Result<(), CniError> {
        match &self.conf.ipam {
            IpamKind::Builtin(cfg) => Builtin { cfg, env: self.env }.del(),
            IpamKind::Delegate(plugin) => self.delegate(plugin, Command::Del).map(drop),
        }
    }

    pub fn check(&self) -> Result<(), CniError> {
        match &self.conf.ipam {
            IpamKind::Builtin(cfg) => Builtin { cfg, env: self.env }.check(),
            IpamKind::Delegate(plugin) => self.delegate(plugin, Command::Check).map(drop),
        }
    }

    pub fn gc(&self, valid: &HashSet<(String, String)>) -> Result<(), CniError> {
        match &self.conf.ipam {
            IpamKind::Builtin(cfg) => Builtin { cfg, env: self.env }.gc(valid),
            IpamKind::Delegate(plugin) => tolerate_old(self.delegate(plugin, Command::Gc)),
        }
    }

    pub fn status(&self) -> Result<(), CniError> {
        match &self.conf.ipam {
            IpamKind::Builtin(cfg) => Builtin { cfg, env: self.env }.status(),
            IpamKind::Delegate(plugin) => tolerate_old(self.delegate(plugin, Command::Status)),
        }
    }
}

/// A delegate older than spec 1.1.0 (Debian's host-local is 1.0.0) knows
/// neither GC nor STATUS and says so with code 1 or 4; libcni skips such
/// plugins for these verbs, and so do we.
fn tolerate_old(r: Result<Vec<u8>, CniError>) -> Result<(), CniError> {
    match r {
        Err(e) if matches!(e.code, Code::IncompatibleVersion | Code::InvalidEnvironment) => Ok(()),
        other => other.map(drop),
    }
}
