//! host-local compatible `ipam` configuration: ranges, range sets, routes,
//! data directory, and the static IP requests (`CNI_ARGS` `IP=`,
//! `runtimeConfig.ips`, `args.cni.ips`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ConfigError;

/// Default state directory. A tmpfs, so reservations never outlive a reboot
/// (pods don't either). Set `"dataDir": "/var/lib/cni/networks"` to take over
/// a directory that host-local has been using.
pub const DEFAULT_DATA_DIR: &str = "/run/ferry/ipam";

/// One contiguous pool inside a subnet. After parsing every field is filled
/// in with host-local's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The subnet, always a network address (no host bits).
    pub subnet: IpNet,
    /// First allocatable address (inclusive). Default: network + 1.
    pub range_start: IpAddr,
    /// Last allocatable address (inclusive). Default: broadcast - 1 for IPv4,
    /// the last address for IPv6.
    pub range_end: IpAddr,
    /// Gateway handed out with every address; never allocated itself.
    /// Default: network + 1.
    pub gateway: IpAddr,
}

impl Range {
    /// Whether `ip` lies within `range_start..=range_end` (and so the subnet).
    pub fn contains(&self, ip: IpAddr) -> bool {
        same_family(ip, self.range_start)
            && self.subnet.contains(&ip)
            && to_u128(ip) >= to_u128(self.range_start)
            && to_u128(ip) <= to_u128(self.range_end)
    }

    fn overlaps(&self, other: &Range) -> bool {
        same_family(self.range_start, other.range_start)
            && to_u128(self.range_start) <= to_u128(other.range_end)
            && to_u128(other.range_start) <= to_u128(self.range_end)
    }

    /// Why `ip` (inside this range) must never be handed out, if it must not.
    pub(crate) fn unallocatable(&self, ip: IpAddr) -> Option<&'static str> {
        if ip == self.gateway {
            Some("gateway")
        } else if ip == self.subnet.network() {
            Some("network address")
        } else if ip.is_ipv4() && ip == self.subnet.broadcast() {
            Some("broadcast address")
        } else {
            None
        }
    }
}

impl fmt::Display for Range {
    /// host-local's form: `start-end`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.range_start, self.range_end)
    }
}

/// Ranges of one address family that together yield one IP per attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    pub ranges: Vec<Range>,
}

impl RangeSet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// The range holding `ip` (between its start and end), if any.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    /// The range whose subnet holds `ip`, even outside start..end.
    pub fn subnet_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.subnet.contains(&ip))
    }
}

impl fmt::Display for RangeSet {
    /// host-local's form: `start-end,start-end`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// A route to hand back with the allocation (`{"dst": ..., "gw": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

/// The parsed `ipam` object of a network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConfig {
    /// The network name (the netconf's `name`); names the state directory.
    pub network_name: String,
    /// One allocated IP per range set; index = N in `last_reserved_ip.N`.
    pub ranges: Vec<RangeSet>,
    pub routes: Vec<RouteConfig>,
    /// `dataDir`, default [`DEFAULT_DATA_DIR`].
    pub data_dir: PathBuf,
    /// host-local's `resolvConf`, passed through unparsed.
    pub resolv_conf: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIpam {
    #[serde(default)]
    ranges: Option<Vec<Vec<RawRange>>>,
    // host-local's legacy single range, inline in the ipam object.
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    range_start: Option<String>,
    #[serde(default)]
    range_end: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    routes: Option<Vec<RawRoute>>,
    #[serde(default)]
    data_dir: Option<String>,
    #[serde(default)]
    resolv_conf: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRange {
    subnet: String,
    #[serde(default)]
    range_start: Option<String>,
    #[serde(default)]
    range_end: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    #[serde(default)]
    gw: Option<String>,
}

impl IpamConfig {
    /// Parse and validate the netconf's `ipam` object for network
    /// `network_name`, filling in host-local's defaults.
    pub fn from_value(ipam: &Value, network_name: &str) -> Result<IpamConfig, ConfigError> {
        validate_network_name(network_name)?;
        let raw = RawIpam::deserialize(ipam)?;

        let mut raw_sets = Vec::new();
        if let Some(subnet) = raw.subnet.filter(|s| !s.is_empty()) {
            raw_sets.push(vec![RawRange {
                subnet,
                range_start: raw.range_start,
                range_end: raw.range_end,
                gateway: raw.gateway,
            }]);
        }
        raw_sets.extend(raw.ranges.unwrap_or_default());
        if raw_sets.is_empty() {
            return Err(ConfigError::NoRanges);
        }

        let mut ranges = Vec::with_capacity(raw_sets.len());
        for (idx, set) in raw_sets.into_iter().enumerate() {
            ranges.push(parse_range_set(idx, set)?);
        }
        check_overlaps(&ranges)?;

        let routes = raw
            .routes
            .unwrap_or_default()
            .into_iter()
            .map(parse_route)
            .collect::<Result<Vec<_>, _>>()?;

        let data_dir = match raw.data_dir {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from(DEFAULT_DATA_DIR),
        };

        Ok(IpamConfig {
            network_name: network_name.to_owned(),
            ranges,
            routes,
            data_dir,
            resolv_conf: raw.resolv_conf.filter(|s| !s.is_empty()).map(PathBuf::from),
        })
    }

    /// `<dataDir>/<network name>`, where the reservations live.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join(&self.network_name)
    }

    /// Index of the range set holding `ip` (between start and end).
    pub fn range_set_for(&self, ip: IpAddr) -> Option<usize> {
        self.ranges.iter().position(|s| s.contains(ip))
    }
}

/// A network name must name exactly one directory below `dataDir`.
pub fn validate_network_name(name: &str) -> Result<(), ConfigError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "is a relative path component"
    } else if name.contains('/') {
        "contains '/'"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.len() > 255 {
        "longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(ConfigError::InvalidNetworkName {
        name: name.to_owned(),
        reason,
    })
}

fn parse_addr(field: &'static str, value: &str) -> Result<IpAddr, ConfigError> {
    value
        .trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ConfigError::InvalidAddress {
            field,
            value: value.to_owned(),
        })
}

fn parse_range(raw: RawRange) -> Result<Range, ConfigError> {
    let subnet: IpNet = raw
        .subnet
        .trim()
        .parse()
        .map_err(|e: ipnet::AddrParseError| ConfigError::InvalidSubnet {
            value: raw.subnet.clone(),
            reason: e.to_string(),
        })?;
    if subnet.addr() != subnet.network() {
        return Err(ConfigError::HostBitsSet {
            subnet: raw.subnet,
            network: subnet.network().to_string(),
        });
    }
    if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
        return Err(ConfigError::SubnetTooSmall {
            subnet: subnet.to_string(),
        });
    }
    let first = from_u128(to_u128(subnet.network()) + 1, subnet.network());
    let last = match subnet {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.broadcast()) - 1).into()),
        IpNet::V6(n) => IpAddr::V6(n.broadcast()),
    };

    let inside = |field: &'static str, value: Option<String>, default: IpAddr| match value {
        Some(v) if !v.trim().is_empty() => {
            let addr = parse_addr(field, &v)?;
            if same_family(addr, default) && subnet.contains(&addr) {
                Ok(addr)
            } else {
                Err(ConfigError::NotInSubnet {
                    field,
                    addr,
                    subnet: subnet.to_string(),
                })
            }
        }
        _ => Ok(default),
    };
    let range_start = inside("rangeStart", raw.range_start, first)?;
    let range_end = inside("rangeEnd", raw.range_end, last)?;
    let gateway = inside("gateway", raw.gateway, first)?;
    if to_u128(range_start) > to_u128(range_end) {
        return Err(ConfigError::StartAfterEnd {
            start: range_start,
            end: range_end,
        });
    }
    Ok(Range {
        subnet,
        range_start,
        range_end,
        gateway,
    })
}

fn parse_range_set(idx: usize, raw: Vec<RawRange>) -> Result<RangeSet, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::EmptyRangeSet { set: idx });
    }
    let ranges = raw
        .into_iter()
        .map(parse_range)
        .collect::<Result<Vec<_>, _>>()?;
    let first = &ranges[0];
    if let Some(other) = ranges
        .iter()
        .find(|r| !same_family(r.range_start, first.range_start))
    {
        return Err(ConfigError::MixedFamilies {
            set: idx,
            first: first.subnet.to_string(),
            second: other.subnet.to_string(),
        });
    }
    Ok(RangeSet { ranges })
}

/// No two ranges may overlap, within a set or across sets.
fn check_overlaps(sets: &[RangeSet]) -> Result<(), ConfigError> {
    let all: Vec<&Range> = sets.iter().flat_map(|s| s.ranges.iter()).collect();
    for (i, a) in all.iter().enumerate() {
        if let Some(b) = all[i + 1..].iter().find(|b| a.overlaps(b)) {
            return Err(ConfigError::Overlap {
                first: format!("{} ({})", a, a.subnet),
                second: format!("{} ({})", b, b.subnet),
            });
        }
    }
    Ok(())
}

fn parse_route(raw: RawRoute) -> Result<RouteConfig, ConfigError> {
    let bad = |reason: String| ConfigError::InvalidRoute {
        value: match &raw.gw {
            Some(gw) => format!("{} via {}", raw.dst, gw),
            None => raw.dst.clone(),
        },
        reason,
    };
    let dst: IpNet = raw.dst.trim().parse().map_err(|e| bad(format!("{e}")))?;
    let gw = match raw.gw.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(g) => {
            let gw = g
                .parse::<IpAddr>()
                .map_err(|_| bad(format!("gw {g:?} is not an IP address")))?;
            if !same_family(gw, dst.addr()) {
                return Err(bad("gw and dst are of different address families".into()));
            }
            Some(gw)
        }
    };
    Ok(RouteConfig { dst, gw })
}

/// Collect statically requested IPs from `CNI_ARGS` (`IP=a,b`, each an
/// address or `address/prefix`) and from a runtime-supplied list
/// (`runtimeConfig.ips` / `args.cni.ips`: `address/prefix` or plain
/// address). The prefix is ignored: the subnet's prefix is used. Duplicates
/// are dropped, order is kept.
pub fn parse_requested_ips<S: AsRef<str>>(
    cni_args: Option<&str>,
    runtime_ips: &[S],
) -> Result<Vec<IpAddr>, ConfigError> {
    let mut out = Vec::new();
    let mut push = |value: &str, source_name: &'static str| -> Result<(), ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        let parsed = if value.contains('/') {
            value.parse::<IpNet>().map(|n| n.addr()).ok()
        } else {
            value.parse::<IpAddr>().ok()
        };
        let ip = parsed
            .ok_or_else(|| ConfigError::InvalidRequestedIp {
                value: value.to_owned(),
                source_name,
            })?
            .to_canonical();
        if !out.contains(&ip) {
            out.push(ip);
        }
        Ok(())
    };
    for pair in cni_args.unwrap_or("").split(';') {
        if let Some(("IP", list)) = pair.split_once('=') {
            for item in list.split(',') {
                push(item, "CNI_ARGS IP")?;
            }
        }
    }
    for item in runtime_ips {
        push(item.as_ref(), "runtime ips")?;
    }
    Ok(out)
}

/// [`parse_requested_ips`] over a whole netconf: reads `runtimeConfig.ips`
/// and `args.cni.ips` (both lists of strings) plus `CNI_ARGS`.
pub fn requested_ips_from_netconf(
    netconf: &Value,
    cni_args: Option<&str>,
) -> Result<Vec<IpAddr>, ConfigError> {
    let mut list: Vec<&str> = Vec::new();
    for ptr in ["/runtimeConfig/ips", "/args/cni/ips"] {
        match netconf.pointer(ptr) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_str() {
                        Some(s) => list.push(s),
                        None => {
                            return Err(ConfigError::InvalidRequestedIp {
                                value: item.to_string(),
                                source_name: "runtime ips",
                            })
                        }
                    }
                }
            }
            Some(other) => {
                return Err(ConfigError::InvalidRequestedIp {
                    value: other.to_string(),
                    source_name: "runtime ips",
                })
            }
        }
    }
    parse_requested_ips(cni_args, &list)
}

pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address `value` in the family of `like`. `value` must fit.
pub(crate) fn from_u128(value: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((value as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(value.into()),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
