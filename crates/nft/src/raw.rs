//! The low-level pieces of this crate, for other ferry crates that write
//! their own nf_tables objects (e.g. the NetworkPolicy table): batches,
//! the attribute writer and reader, the socket, interval-set elements as
//! nft 1.0.6 encodes them, and the kernel's numbers. The masquerade table
//! above is built from the same pieces.
//!
//! Everything acts in the network namespace of the thread that opened the
//! [`Socket`].

pub use crate::cidr::{elements_to_ranges, interval_elements, key_bytes, key_from_bytes};
pub use crate::cidr::{Elem, IpFamily, Range};
pub use crate::msg::{
    del_table, encode_elem, expr, new_table, set_elems, udata, Batch, SealedBatch,
};
pub use crate::nla::{Attr, Attrs, Writer};
pub use crate::socket::NfSocket as Socket;

/// Kernel uapi numbers (netlink, nfnetlink, nf_tables) and the libnftnl
/// userdata types this crate knows.
pub mod consts {
    pub use crate::sys::*;
}
