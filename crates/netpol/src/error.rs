//! What can be wrong with an API object.

use thiserror::Error;

/// Why (part of) an API object cannot be translated.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("metadata.{0} is missing")]
    MissingMeta(&'static str),
    #[error("invalid CIDR {0:?}")]
    Cidr(String),
    #[error("ipBlock except {except:?} is not inside cidr {cidr:?}")]
    ExceptOutside { cidr: String, except: String },
    #[error("unknown protocol {0:?}")]
    Protocol(String),
    #[error("port {0} is outside 1-65535")]
    Port(i64),
    #[error("endPort {end} is below port {start}")]
    EndPortBelow { start: u16, end: i64 },
    #[error("endPort needs a numeric port, not {0:?}")]
    EndPortNamed(String),
    #[error("endPort without port")]
    EndPortAlone,
    #[error("unknown label selector operator {0:?}")]
    Operator(String),
    #[error("a peer needs podSelector, namespaceSelector or ipBlock")]
    EmptyPeer,
    #[error("unknown policyType {0:?}")]
    PolicyType(String),
}

/// A part of a policy that was left out, and why. A rule with a bad peer
/// or port is dropped whole: it then allows nothing (fail closed), it is
/// never widened to "every peer" or "every port".
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("NetworkPolicy {policy}: {place}: {error}")]
pub struct PolicyProblem {
    /// `namespace/name`.
    pub policy: String,
    /// Where: `spec.podSelector`, `spec.ingress[0].from[1]`, ...
    pub place: String,
    pub error: ConvertError,
}
