//! STATUS: ready when the IPAM can allocate (its store is writable and no
//! range is exhausted); code 50 otherwise.

use ferry_cni::CniError;

use crate::cmd::Invocation;
use crate::ipam::Ipam;

pub fn status(inv: &Invocation<'_>) -> Result<(), CniError> {
    Ipam {
        conf: inv.conf,
        env: inv.env,
        stdin: inv.stdin,
    }
    .status()
}
