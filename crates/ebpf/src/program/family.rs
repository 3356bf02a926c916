// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//! One address family's path through the program: parse, the pod↔pod
//! (and not excluded), source and conntrack tests, the FIB lookup and the
//! TTL. IPv4 and IPv6 differ in header offsets and address length, in the
//! IPv4 header's checksum and options, and in nothing else that matters
//! here. Each family's path also exists for a packet inside a VXLAN
//! header from a peer node ([`encapsulated`]): the same tests on the inner
//! packet, 50 bytes further in, and the outer headers removed only once
//! the packet is sure to be forwarded (see [`super::vxlan`]).

use super::vxlan::OUTER_LEN;
use super::*;
use crate::insn::{R7, R8, R9};

/// What tells the families apart.
pub(super) struct Family {
    /// Label of the path's start; also prefixes its inner labels.
    pub tag: &'static str,
    af: i32,
    /// Address length in bytes (4 or 16).
    addr_len: i16,
    /// Packet offsets (from the start of the frame): the IP header ...
    l3: i16,
    saddr: i16,
    daddr: i16,
    ttl: i16,
    proto: i16,
    ports: i16,
    /// Where the FIB query's TOS (IPv4: 1 byte) or flow info (IPv6: the
    /// header's first word, less the version) is read.
    tos: (i16, Size),
    /// Inside a VXLAN header: the path decapsulates before forwarding.
    decap: bool,
}

pub(super) const V4: Family = Family {
    tag: "v4",
    af: libc::AF_INET,
    addr_len: 4,
    l3: 14,
    saddr: 26,
    daddr: 30,
    ttl: 22,
    proto: 23,
    ports: 34,
    tos: (15, Size::B),
    decap: false,
};

pub(super) const V6: Family = Family {
    tag: "v6",
    af: libc::AF_INET6,
    addr_len: 16,
    l3: 14,
    saddr: 22,
    daddr: 38,
    ttl: 21,
    proto: 20,
    ports: 54,
    tos: (14, Size::W),
    decap: false,
};

/// IPv4 and IPv6 inside VXLAN (over IPv4).
pub(super) const V4_IN_VXLAN: Family = encapsulated(V4, "v4x");
pub(super) const V6_IN_VXLAN: Family = encapsulated(V6, "v6x");

/// `f` behind the [`OUTER_LEN`] bytes of outer IPv4, UDP and VXLAN
/// headers and the inner Ethernet header.
const fn encapsulated(f: Family, tag: &'static str) -> Family {
    let d = OUTER_LEN;
    Family {
        tag,
        af: f.af,
        addr_len: f.addr_len,
        l3: f.l3 + d,
        saddr: f.saddr + d,
        daddr: f.daddr + d,
        ttl: f.ttl + d,
        proto: f.proto + d,
        ports: f.ports + d,
        tos: (f.tos.0 + d, f.tos.1),
        decap: true,
    }
}

impl Family {
    fn label(&self, what: &str) -> String {
        format!("{}_{what}", self.tag)
    }

    fn headers_end(&self) -> i32 {
        i32::from(self.ports) + 4
    }

    /// bpf_sock_tuple size: two addresses and two ports.
    fn tuple_len(&self) -> i32 {
        2 * i32::from(self.addr_len) + 4
    }

    /// Copies an address (4-byte moves) from `src_reg + src` to the stack.
    fn copy_addr(&self, a: &mut Asm, src_reg: crate::insn::Reg, src: i16, dst: i16) {
        for w in (0..self.addr_len).step_by(4) {
            a.load(Size::W, R5, src_reg, src + w)
                .store(Size::W, FP, dst + w, R5);
        }
    }
}

/// Fills the FIB query from the saved tuple, `reverse`d for the source
/// test, as if the packet had been received on [`IN_IF`] (its ingress
/// device; the tunnel device for a packet decapsulated here), and
/// asks the kernel. `tot_len` 0: the kernel checks the MTU itself,
/// GSO-aware (but counting all of the frame). Needs R7 = protocol; the answer is in R0.
fn fib_query(a: &mut Asm, f: &Family, reverse: bool) {
    let n = f.addr_len;
    let (src, dst, sport, dport) = if reverse {
        (n, 0, 2 * n + 2, 2 * n)
    } else {
        (0, n, 2 * n, 2 * n + 2)
    };
    for off in (0..FIB_LEN as i16).step_by(8) {
        a.store_imm(Size::DW, FP, FIB + off, 0);
    }
    a.store_imm(Size::B, FP, FIB, f.af)
        .store(Size::B, FP, FIB + 1, R7)
        .load(Size::H, R5, FP, TUPLE + sport)
        .store(Size::H, FP, FIB + 2, R5)
        .load(Size::H, R5, FP, TUPLE + dport)
        .store(Size::H, FP, FIB + 4, R5)
        .load(Size::W, R5, FP, IN_IF)
        .store(Size::W, FP, FIB + 8, R5)
        .load(f.tos.1, R5, FP, TOS)
        .store(f.tos.1, FP, FIB + 12, R5);
    f.copy_addr(a, FP, TUPLE + src, FIB + 16);
    f.copy_addr(a, FP, TUPLE + dst, FIB + 32);
    if f.decap && !reverse {
        // The kernel's own MTU check would weigh the outer headers too:
        // give it the inner packet's length instead (a GSO packet keeps
        // tot_len 0: the kernel checks its segments).
        let skip = f.label("fib_gso");
        a.load(Size::W, R5, R6, SKB_GSO_SIZE)
            .jmp_imm(Cond::Ne, R5, 0, &skip)
            .load(Size::W, R5, R6, SKB_LEN)
            .sub_imm(R5, i32::from(f.l3))
            .store(Size::H, FP, FIB + 6, R5)
            .label(&skip);
    }
    a.mov(R1, R6)
        .mov(R2, FP)
        .add_imm(R2, FIB.into())
        .mov_imm(R3, FIB_LEN)
        .mov_imm(R4, 0)
        .call(BPF_FUNC_FIB_LOOKUP);
}

/// Is the address at `addr` (stack offset) one the fast path may carry?
/// Its longest match in the family's `cidrs` map must be a cluster CIDR
/// (value exactly [`CLUSTER`]): no match, or an excluded host prefix
/// (the [`EXCLUDED`](crate::cidrs::EXCLUDED) bit set), jumps to `not`.
fn in_cluster(a: &mut Asm, f: &Family, map: i32, addr: i16, not: &str) {
    a.store_imm(Size::W, FP, KEY, i32::from(f.addr_len) * 8);
    f.copy_addr(a, FP, addr, KEY + 4);
    a.load_map(R1, map)
        .mov(R2, FP)
        .add_imm(R2, KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM)
        .jmp_imm(Cond::Eq, R0, 0, not)
        .load(Size::W, R5, R0, 0)
        .jmp_imm(Cond::Ne, R5, CLUSTER as i32, not);
}

/// The family's path; it ends by jumping to `rewrite`, `resolve` or one
/// of the `pass` labels.
pub(super) fn path(a: &mut Asm, refs: &Refs, f: &Family) {
    let v6 = f.af == libc::AF_INET6;
    let n = f.addr_len;

    // 1. Parse: no IPv4 options or fragments, no IPv6 extension headers
    //    (the next header is the transport), TCP or UDP, TTL > 1.
    bounds(a, f.headers_end(), "pass");
    if v6 {
        a.load(Size::B, R5, R2, f.l3)
            .and_imm(R5, 0xf0)
            .jmp_imm(Cond::Ne, R5, 0x60, "pass");
    } else {
        a.load(Size::B, R5, R2, f.l3)
            .jmp_imm(Cond::Ne, R5, 0x45, "pass")
            .load(Size::H, R5, R2, f.l3 + 6)
            .and_imm(R5, 0xff3f) // MF and the offset, in network order
            .jmp_imm(Cond::Ne, R5, 0, "pass");
    }
    a.load(Size::B, R5, R2, f.ttl)
        .jmp_imm(Cond::Le, R5, 1, "pass")
        .load(Size::B, R7, R2, f.proto) // R7 = l4 protocol until the FIB answer
        .jmp_imm(Cond::Eq, R7, 6, &f.label("l4"))
        .jmp_imm(Cond::Ne, R7, 17, "pass")
        .label(&f.label("l4"));

    // What the rest needs from the headers, saved on the stack (packet
    // pointers do not survive helper calls): the conntrack tuple and the
    // TOS / flow label.
    f.copy_addr(a, R2, f.saddr, TUPLE);
    f.copy_addr(a, R2, f.daddr, TUPLE + n);
    a.load(Size::W, R5, R2, f.ports)
        .store(Size::W, FP, TUPLE + 2 * n, R5)
        .load(f.tos.1, R5, R2, f.tos.0);
    if v6 {
        // Traffic class and flow label without the version, as the stack's
        // own lookup takes them (ip6_flowinfo).
        a.and_imm(R5, 0xffff_ff0f_u32 as i32);
    }
    a.store(f.tos.1, FP, TOS, R5);

    // 2. Pod ↔ pod only, neither pod excluded.
    let cidrs = if v6 { refs.cidrs6_map } else { refs.cidrs_map };
    in_cluster(a, f, cidrs, TUPLE, "pass");
    in_cluster(a, f, cidrs, TUPLE + n, "pass");

    // 3. From a pod: its source routes back to the veth it came from.
    //    (A decapsulated packet comes from a peer node, never a pod here.)
    if !f.decap {
        a.load(Size::W, R5, R6, SKB_INGRESS_IFINDEX)
            .store(Size::W, FP, IFACE_KEY, R5);
        is_pod_iface(a, refs, IFACE_KEY);
        a.jmp_imm(Cond::Eq, R0, 0, &f.label("source_ok"));
        fib_query(a, f, true);
        a.jmp_imm(Cond::Eq, R0, 0, &f.label("reverse_routed"))
            .jmp_imm(Cond::Ne, R0, BPF_FIB_LKUP_RET_NO_NEIGH, "pass")
            .label(&f.label("reverse_routed"))
            .load(Size::W, R5, FP, FIB + 8)
            .load(Size::W, R4, R6, SKB_INGRESS_IFINDEX)
            .jmp_reg(Cond::Ne, R5, R4, "pass")
            .label(&f.label("source_ok"));
    }

    // 4. Not tracked by conntrack here.
    a.store_imm(Size::W, FP, OPTS, -1) // netns_id: BPF_F_CURRENT_NETNS
        .store_imm(Size::W, FP, OPTS + 4, 0) // error
        .store_imm(Size::W, FP, OPTS + 8, 0) // l4proto, dir, reserved[2]
        .store(Size::B, FP, OPTS + 8, R7)
        .mov(R1, R6)
        .mov(R2, FP)
        .add_imm(R2, TUPLE.into())
        .mov_imm(R3, f.tuple_len())
        .mov(R4, FP)
        .add_imm(R4, OPTS.into())
        .mov_imm(R5, OPTS_LEN)
        .call_kfunc(refs.ct_lookup.0, refs.ct_lookup.1)
        .jmp_imm(Cond::Eq, R0, 0, &f.label("untracked"))
        .mov(R1, R0)
        .call_kfunc(refs.ct_release.0, refs.ct_release.1)
        .ja("pass_tracked")
        .label(&f.label("untracked"))
        // Only "no such entry" means untracked: any other lookup error
        // leaves the packet to the stack.
        .load(Size::W, R5, FP, OPTS + 4)
        .jmp32_imm(Cond::Ne, R5, -ENOENT, "pass");

    // 5. Route it as the stack would.
    fib_query(a, f, false);
    a.mov(R7, R0); // the answer, kept across the calls below
    if f.decap {
        // Decapsulated only into a pod of this node, its neighbour known:
        // anything else goes to the stack still encapsulated, as it came.
        super::vxlan::decap(a, refs, f.af);
        ttl_and_out(a, if f.af == libc::AF_INET6 { &V6 } else { &V4 });
        return;
    }
    a.jmp_imm(Cond::Eq, R7, 0, &f.label("routed")) // BPF_FIB_LKUP_RET_SUCCESS
        .jmp_imm(Cond::Ne, R7, BPF_FIB_LKUP_RET_NO_NEIGH, "pass_no_fib")
        .label(&f.label("routed"));
    ttl_and_out(a, f);
}

/// TTL (hop limit) − 1, then on to `rewrite`, or to `resolve` when the
/// FIB answer in R7 says the next hop's MAC is unknown.
fn ttl_and_out(a: &mut Asm, f: &Family) {
    let v6 = f.af == libc::AF_INET6;
    bounds(a, f.headers_end(), "pass");
    if v6 {
        // Hop limit − 1 (no header checksum in IPv6).
        a.load(Size::B, R5, R2, f.ttl)
            .sub_imm(R5, 1)
            .store(Size::B, R2, f.ttl, R5);
    } else {
        // TTL − 1 and the header checksum; TTL and protocol as one
        // 16-bit word (TTL > 1 was checked: no borrow).
        a.load(Size::H, R8, R2, f.ttl)
            .mov(R9, R8)
            .sub_imm(R9, 1)
            .store(Size::H, R2, f.ttl, R9)
            .mov(R1, R6)
            .mov_imm(R2, i32::from(f.l3) + 10) // the IPv4 header checksum
            .mov(R3, R8)
            .mov(R4, R9)
            .mov_imm(R5, 2)
            .call(BPF_FUNC_L3_CSUM_REPLACE)
            .jmp_imm(Cond::Ne, R0, 0, "drop");
    }
    a.jmp_imm(Cond::Ne, R7, BPF_FIB_LKUP_RET_NO_NEIGH, "rewrite");
    // The FIB answer names the device and the next hop (the gateway, or
    // the destination itself) even when the neighbour is unresolved.
    for off in (0..NEIGH_LEN as i16).step_by(4) {
        a.store_imm(Size::W, FP, NEIGH + off, 0);
    }
    a.store_imm(Size::W, FP, NEIGH, f.af);
    f.copy_addr(a, FP, FIB + 32, NEIGH + 4);
    a.ja("resolve");
}
