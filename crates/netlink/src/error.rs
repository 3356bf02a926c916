use std::fmt;
use std::io;

/// Errors from [`crate::Handle`]. Each names the operation (`"RTM_NEWLINK"`,
/// ...) and the object it was about (link name/index, address, route).
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening or configuring the netlink socket, or a send/recv, failed.
    #[error("netlink socket {op}: {source}")]
    Socket { op: &'static str, source: io::Error },

    /// The kernel rejected the request (NLMSG_ERROR with a negative errno).
    /// `message` is the kernel's extended-ack text when it gave one.
    #[error("{op} {target}: {}{}", fmt_errno(*.errno), fmt_ext(.message))]
    Kernel {
        op: &'static str,
        target: String,
        errno: i32,
        message: Option<String>,
    },

    /// A reply could not be decoded, was truncated, or broke the protocol.
    #[error("{op} {target}: bad netlink reply: {reason}")]
    Protocol {
        op: &'static str,
        target: String,
        reason: String,
    },

    /// The request was rejected before being sent (bad name, mixed address
    /// families, ...).
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument { op: &'static str, reason: String },
}

fn fmt_errno(errno: i32) -> String {
    // e.g. "File exists (os error 17)"
    io::Error::from_raw_os_error(errno).to_string()
}

fn fmt_ext(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(": {m}"),
        None => String::new(),
    }
}

impl NetlinkError {
    /// The positive errno, for kernel and socket errors.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Socket { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// `EEXIST`: the link/address/route already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object does not exist: `ENODEV` (link), `ENOENT`, `ESRCH` (route)
    /// or `EADDRNOTAVAIL` (address).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            NetlinkError::Kernel { errno, .. }
                if matches!(*errno, libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    /// `EPERM`/`EACCES`: missing `CAP_NET_ADMIN` in the namespace.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self.errno(), Some(libc::EPERM) | Some(libc::EACCES))
    }

    /// The engine's error, with the operation and its object.
    pub(crate) fn from_engine(
        op: &'static str,
        target: &Target,
        e: crate::engine::EngineError,
    ) -> Self {
        use crate::engine::EngineError;
        match e {
            EngineError::Socket { op, source } => NetlinkError::Socket { op, source },
            EngineError::Kernel { errno, message } => Self::kernel(op, target, errno, message),
            EngineError::Protocol(reason) => Self::protocol(op, target, reason),
        }
    }

    pub(crate) fn kernel(
        op: &'static str,
        target: &Target,
        errno: i32,
        message: Option<String>,
    ) -> Self {
        NetlinkError::Kernel {
            op,
            target: target.to_string(),
            errno,
            message,
        }
    }

    pub(crate) fn protocol(op: &'static str, target: &Target, reason: impl Into<String>) -> Self {
        NetlinkError::Protocol {
            op,
            target: target.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        NetlinkError::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }
}

/// What a request is about; only rendered to text when an error happens.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Name(String),
    Index(u32),
    Veth { name: String, peer: String },
    Addr { index: u32, addr: ipnet::IpNet },
    Route { dst: ipnet::IpNet, table: u32 },
    Neigh { index: u32, ip: std::net::IpAddr },
    Fdb { index: u32, mac: [u8; 6] },
    Dump(&'static str),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(n) => write!(f, "link {n:?}"),
            Target::Index(i) => write!(f, "ifindex {i}"),
            Target::Veth { name, peer } => write!(f, "veth {name:?} (peer {peer:?})"),
            Target::Addr { index, addr } => write!(f, "address {addr} on ifindex {index}"),
            Target::Route { dst, table } => write!(f, "route {dst} table {table}"),
            Target::Neigh { index, ip } => write!(f, "neighbour {ip} on ifindex {index}"),
            Target::Fdb { index, mac } => write!(
                f,
                "fdb {} on ifindex {index}",
                mac.map(|b| format!("{b:02x}")).join(":")
            ),
            Target::Dump(what) => write!(f, "dump of {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_text_and_helpers() {
        let e = NetlinkError::kernel(
            "RTM_NEWLINK",
            &Target::Name("eth0".into()),
            libc::EEXIST,
            None,
        );
        assert!(e.is_exists());
        assert!(!e.is_not_found());
        let text = e.to_string();
        assert!(text.starts_with("RTM_NEWLINK link \"eth0\": "), "{text}");
        assert!(text.contains("os error 17"), "{text}");

        let e = NetlinkError::kernel(
            "RTM_DELROUTE",
            &Target::Route {
                dst: "10.0.0.0/8".parse().unwrap(),
                table: 254,
            },
            libc::ESRCH,
            Some("no such route".into()),
        );
        assert!(e.is_not_found());
        assert_eq!(e.errno(), Some(libc::ESRCH));
        assert!(e.to_string().ends_with(": no such route"), "{e}");

        let e = NetlinkError::invalid("RTM_NEWLINK", "bad name");
        assert_eq!(e.errno(), None);
        assert!(!e.is_exists());
    }
}
