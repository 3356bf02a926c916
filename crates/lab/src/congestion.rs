//! Which TCP congestion control the throughput benches run under.
//!
//! The benches are CPU-bound on two cores, and the congestion control
//! changes what they measure: BBR (this machine's kernel default) paces
//! every flow with a high-resolution timer, and on this VM each pacing
//! timer costs an interrupt, so node↔node flows stop near 15–18 Gbit/s;
//! CUBIC (most distributions' default) does not pace, and the same flows
//! reach 24–29 Gbit/s. A pod↔pod / node↔node ratio is therefore only
//! meaningful with the congestion control beside it: every bench prints
//! it, and `--congestion NAME` runs one under another.
//!
//! A namespace other than the initial one takes its default from the
//! initial namespace and may only switch to a congestion control listed in
//! `net.ipv4.tcp_allowed_congestion_control` (the kernel answers EPERM
//! otherwise). Setting the namespace default, rather than iperf3's `-C`,
//! matters: a socket that started under BBR keeps pacing after it
//! switches. So [`Congestion::select`] adds the name to the allowed list
//! for as long as the value lives and restores the list when it drops
//! (a bench killed midway leaves the name allowed, which only lets
//! namespaces choose it); [`Congestion::apply`] sets it in every node and
//! pod namespace of a lab.

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::sh;

const DEFAULT_KEY: &str = "net.ipv4.tcp_congestion_control";
const AVAILABLE_KEY: &str = "net.ipv4.tcp_available_congestion_control";
const ALLOWED_KEY: &str = "net.ipv4.tcp_allowed_congestion_control";

/// The congestion control of a bench run.
#[derive(Debug)]
pub struct Congestion {
    name: String,
    kernel_default: String,
    /// The allowed list as it was, when `select` had to extend it.
    restore_allowed: Option<String>,
}

fn read(key: &str) -> Result<String> {
    ferry_netns::sysctl::read(key).map_err(|e| LabError::Invalid(format!("reading {key}: {e}")))
}

fn write(key: &str, value: &str) -> Result<()> {
    ferry_netns::sysctl::write(key, value)
        .map_err(|e| LabError::Invalid(format!("writing {key}={value}: {e}")))
}

/// `list` (space-separated) with `name` appended, or `None` when it is
/// already there.
fn with_name(list: &str, name: &str) -> Option<String> {
    if list.split_whitespace().any(|n| n == name) {
        return None;
    }
    Some(
        list.split_whitespace()
            .chain(std::iter::once(name))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

impl Congestion {
    /// The kernel's default (the initial namespace's), which every new
    /// namespace starts with.
    pub fn kernel_default() -> Result<Self> {
        let name = read(DEFAULT_KEY)?;
        Ok(Congestion {
            kernel_default: name.clone(),
            name,
            restore_allowed: None,
        })
    }

    /// `name`, which the kernel must offer (else an error, and nothing
    /// changed); made selectable in namespaces until the value drops.
    pub fn select(name: &str) -> Result<Self> {
        let available = read(AVAILABLE_KEY)?;
        if !available.split_whitespace().any(|n| n == name) {
            return Err(LabError::Invalid(format!(
                "congestion control {name:?} is not one this kernel offers ({available})"
            )));
        }
        let mut cc = Self::kernel_default()?;
        cc.name = name.to_string();
        let allowed = read(ALLOWED_KEY)?;
        if let Some(extended) = with_name(&allowed, name) {
            write(ALLOWED_KEY, &extended)?;
            cc.restore_allowed = Some(allowed);
        }
        Ok(cc)
    }

    /// For the bench's header line.
    pub fn describe(&self) -> String {
        if self.name == self.kernel_default {
            format!(
                "TCP congestion control {} (the kernel's default)",
                self.name
            )
        } else {
            format!(
                "TCP congestion control {} in every node and pod namespace (the kernel's default is {})",
                self.name, self.kernel_default
            )
        }
    }

    /// Sets it as the default of every node and pod namespace of `lab`.
    pub fn apply(&self, lab: &Lab) -> Result<()> {
        let nodes = lab.state.nodes.iter().map(|n| n.plan.netns.as_str());
        let pods = lab.state.pods.iter().map(|p| p.netns.as_str());
        self.apply_to(nodes.chain(pods))
    }

    /// Sets it as the default of each namespace.
    pub fn apply_to<'a>(&self, namespaces: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for ns in namespaces {
            sh::sysctl(ns, DEFAULT_KEY, &self.name)?;
        }
        Ok(())
    }
}

impl Drop for Congestion {
    fn drop(&mut self) {
        if let Some(allowed) = self.restore_allowed.take() {
            if let Err(e) = write(ALLOWED_KEY, &allowed) {
                eprintln!("ferry-lab: could not restore {ALLOWED_KEY}={allowed}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_appended_once() {
        assert_eq!(
            with_name("reno bbr", "cubic").as_deref(),
            Some("reno bbr cubic")
        );
        assert_eq!(with_name("reno bbr", "bbr"), None);
        assert_eq!(with_name("reno  bbr\n", "reno"), None);
        assert_eq!(with_name("", "cubic").as_deref(), Some("cubic"));
    }
}
