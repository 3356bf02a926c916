// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//! ferry's fast path: a tc ingress program, attached to the node's uplink
//! and to every pod's host-side veth, that forwards pod↔pod IPv4 TCP/UDP
//! without the host's IP stack (no netfilter, no second trip through the
//! forwarding code) whenever doing so cannot change what the stack would
//! have done. The program text is offered under Apache-2.0 or GPL-2.0 (it
//! declares "GPL" to the kernel, which requires it for the FIB helper).
//!
//! A packet is forwarded here only when all of these hold; anything else
//! goes to the stack unchanged (`TC_ACT_UNSPEC`):
//! 1. IPv4 without options or fragmentation, TCP or UDP, TTL > 1;
//! 2. source and destination both inside the cluster's pod CIDRs (the
//!    `cidrs` map the agent fills), so masquerade never applies;
//! 3. conntrack has no entry for the flow on this node: a Service's DNAT
//!    (kube-proxy) and its reverse on replies, and anything else the stack
//!    tracks, keep going through netfilter. A flow never tracked here stays
//!    untracked here in both directions, because both directions meet this
//!    same test;
//! 4. the kernel's FIB has a route for it (the same lookup the stack
//!    would do); then the TTL is decremented, MACs set and the packet sent
//!    out of the route's device: straight into the pod's namespace when
//!    that device is a pod's host veth (the `pod_ifaces` map, filled by the
//!    plugin; `bpf_redirect_peer` skips the veth's receive queue), else out
//!    of the device. When the next hop's MAC is not resolved
//!    yet, the neighbour subsystem resolves it (`bpf_redirect_neigh`), so
//!    even a flow's first packet to a new pod stays off the stack.
//!
//! Per-CPU counters: [`STAT_FORWARDED`], [`STAT_TRACKED`], [`STAT_NO_FIB`].

use crate::insn::{Asm, Cond, Size, FP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9};

/// Packets forwarded by the program.
pub const STAT_FORWARDED: u32 = 0;
/// Pod↔pod packets left to the stack because conntrack tracks their flow.
pub const STAT_TRACKED: u32 = 1;
/// Pod↔pod packets left to the stack because the FIB lookup did not
/// succeed (no route, unresolved neighbour, MTU).
pub const STAT_NO_FIB: u32 = 2;
/// Slots in the stats map.
pub const STATS: u32 = 3;

const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_FUNC_L3_CSUM_REPLACE: i32 = 10;
const BPF_FUNC_REDIRECT: i32 = 23;
const BPF_FUNC_FIB_LOOKUP: i32 = 69;
const BPF_FUNC_REDIRECT_NEIGH: i32 = 152;
const BPF_FUNC_REDIRECT_PEER: i32 = 155;
const BPF_FIB_LKUP_RET_NO_NEIGH: i32 = 7;

const TC_ACT_UNSPEC: i32 = -1;
const TC_ACT_SHOT: i32 = 2;
const ENOENT: i32 = 2;

// struct __sk_buff
const SKB_INGRESS_IFINDEX: i16 = 36;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;

// Packet offsets: Ethernet, then an option-less IPv4 header, then ports.
const ETH_PROTO: i16 = 12;
const IP_VER_IHL: i16 = 14;
const IP_TOS: i16 = 15;
const IP_FRAG: i16 = 20;
const IP_TTL: i16 = 22;
const IP_PROTO: i16 = 23;
const IP_CHECK: i32 = 24;
const IP_SADDR: i16 = 26;
const IP_DADDR: i16 = 30;
const L4_PORTS: i16 = 34;
const HEADERS_END: i32 = 38;

// The stack frame.
/// struct bpf_fib_lookup (64 bytes).
const FIB: i16 = -64;
const FIB_LEN: i32 = 64;
/// struct bpf_sock_tuple, IPv4 part (12 bytes): saddr, daddr, sport, dport.
const TUPLE: i16 = -80;
const TUPLE_LEN: i32 = 12;
/// struct bpf_ct_opts as of Linux 6.1 (12 bytes).
const OPTS: i16 = -96;
const OPTS_LEN: i32 = 12;
/// LPM trie key: prefixlen, IPv4 address.
const KEY: i16 = -104;
const STAT_KEY: i16 = -108;
const IFACE_KEY: i16 = -112;
/// The IPv4 TOS byte.
const TOS: i16 = -116;
/// struct bpf_redir_neigh (20 bytes): family, IPv4 next hop.
const NEIGH: i16 = -128;
const NEIGH_LEN: i32 = 20;

/// The maps and kernel functions the program refers to.
#[derive(Debug, Clone, Copy)]
pub struct Refs {
    pub cidrs_map: i32,
    pub stats_map: i32,
    /// ifindex → 1 for every pod's host veth.
    pub pod_ifaces_map: i32,
    pub ct_lookup: u32,
    pub ct_release: u32,
}

/// `stats[idx] += 1` (per-CPU, so no atomics). Clobbers R0–R5.
fn count(a: &mut Asm, refs: &Refs, idx: u32, skip: &'static str) {
    a.store_imm(Size::W, FP, STAT_KEY, idx as i32)
        .load_map(R1, refs.stats_map)
        .mov(R2, FP)
        .add_imm(R2, STAT_KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM)
        .jmp_imm(Cond::Eq, R0, 0, skip)
        .load(Size::DW, R1, R0, 0)
        .add_imm(R1, 1)
        .store(Size::DW, R0, 0, R1)
        .label(skip);
}

/// Loads the packet bounds into R2 (start) and R3 (end) and leaves R4 =
/// start + `len`; jumps to `short` when the packet is shorter.
fn bounds(a: &mut Asm, len: i32, short: &'static str) {
    a.load(Size::W, R2, R6, SKB_DATA)
        .load(Size::W, R3, R6, SKB_DATA_END)
        .mov(R4, R2)
        .add_imm(R4, len)
        .jmp_reg(Cond::Gt, R4, R3, short);
}

/// Fills the FIB query from the saved tuple: `src`/`dst` are the tuple
/// offsets of the addresses (and `sport`/`dport` of the ports) to look up,
/// as if the packet had been received on its ingress device. `tot_len` 0:
/// the kernel checks the MTU itself, GSO-aware. Needs R7 = protocol.
fn fib_query(a: &mut Asm, (src, dst): (i16, i16), (sport, dport): (i16, i16)) {
    for off in (0..FIB_LEN as i16).step_by(8) {
        a.store_imm(Size::DW, FP, FIB + off, 0);
    }
    a.store_imm(Size::B, FP, FIB, libc::AF_INET) // family
        .store(Size::B, FP, FIB + 1, R7) // l4_protocol
        .load(Size::H, R5, FP, TUPLE + sport)
        .store(Size::H, FP, FIB + 2, R5)
        .load(Size::H, R5, FP, TUPLE + dport)
        .store(Size::H, FP, FIB + 4, R5)
        .load(Size::W, R5, R6, SKB_INGRESS_IFINDEX)
        .store(Size::W, FP, FIB + 8, R5)
        .load(Size::B, R5, FP, TOS)
        .store(Size::B, FP, FIB + 12, R5)
        .load(Size::W, R5, FP, TUPLE + src)
        .store(Size::W, FP, FIB + 16, R5)
        .load(Size::W, R5, FP, TUPLE + dst)
        .store(Size::W, FP, FIB + 32, R5)
        .mov(R1, R6)
        .mov(R2, FP)
        .add_imm(R2, FIB.into())
        .mov_imm(R3, FIB_LEN)
        .mov_imm(R4, 0)
        .call(BPF_FUNC_FIB_LOOKUP);
}

/// Is the IPv4 address at `addr` (stack offset) inside a cluster CIDR?
fn in_cluster(a: &mut Asm, refs: &Refs, addr: i16, not: &'static str) {
    a.load(Size::W, R5, FP, addr)
        .store(Size::W, FP, KEY + 4, R5)
        .load_map(R1, refs.cidrs_map)
        .mov(R2, FP)
        .add_imm(R2, KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM)
        .jmp_imm(Cond::Eq, R0, 0, not);
}

/// The program's instructions.
pub fn fast_path(refs: &Refs) -> Vec<u64> {
    let mut a = Asm::new();
    a.mov(R6, R1); // R6 = skb for the whole program

    // 1. Parse: Ethernet + IPv4 (no options, no fragments) + TCP/UDP ports.
    bounds(&mut a, HEADERS_END, "pass");
    a.load(Size::H, R5, R2, ETH_PROTO)
        .jmp_imm(Cond::Ne, R5, 0x0008, "pass") // htons(ETH_P_IP)
        .load(Size::B, R5, R2, IP_VER_IHL)
        .jmp_imm(Cond::Ne, R5, 0x45, "pass")
        .load(Size::H, R5, R2, IP_FRAG)
        .and_imm(R5, 0xff3f) // MF and the offset, in network order
        .jmp_imm(Cond::Ne, R5, 0, "pass")
        .load(Size::B, R5, R2, IP_TTL)
        .jmp_imm(Cond::Le, R5, 1, "pass")
        .load(Size::B, R7, R2, IP_PROTO) // R7 = l4 protocol
        .jmp_imm(Cond::Eq, R7, 6, "l4")
        .jmp_imm(Cond::Ne, R7, 17, "pass")
        .label("l4");

    // What the rest needs from the headers, saved on the stack (the
    // packet pointers do not survive helper calls): the conntrack tuple
    // (saddr, daddr, sport, dport) and the TOS.
    a.load(Size::W, R5, R2, IP_SADDR)
        .store(Size::W, FP, TUPLE, R5)
        .load(Size::W, R5, R2, IP_DADDR)
        .store(Size::W, FP, TUPLE + 4, R5)
        .load(Size::W, R5, R2, L4_PORTS)
        .store(Size::W, FP, TUPLE + 8, R5)
        .load(Size::B, R5, R2, IP_TOS)
        .store(Size::B, FP, TOS, R5);

    // 2. Pod ↔ pod only.
    a.store_imm(Size::W, FP, KEY, 32);
    in_cluster(&mut a, refs, TUPLE, "pass");
    in_cluster(&mut a, refs, TUPLE + 4, "pass");

    // From a pod: its source address must route back to the veth it came
    // from (what strict rp_filter checks), else the stack decides. A pod
    // cannot borrow another pod's address to skip the host's rules.
    a.load(Size::W, R5, R6, SKB_INGRESS_IFINDEX)
        .store(Size::W, FP, IFACE_KEY, R5)
        .load_map(R1, refs.pod_ifaces_map)
        .mov(R2, FP)
        .add_imm(R2, IFACE_KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM)
        .jmp_imm(Cond::Eq, R0, 0, "source_ok");
    fib_query(&mut a, (4, 0), (10, 8)); // the way back to the source
    a.jmp_imm(Cond::Eq, R0, 0, "reverse_routed")
        .jmp_imm(Cond::Ne, R0, BPF_FIB_LKUP_RET_NO_NEIGH, "pass")
        .label("reverse_routed")
        .load(Size::W, R5, FP, FIB + 8)
        .load(Size::W, R4, R6, SKB_INGRESS_IFINDEX)
        .jmp_reg(Cond::Ne, R5, R4, "pass")
        .label("source_ok");

    // 3. Not tracked by conntrack here.
    a.store_imm(Size::W, FP, OPTS, -1) // netns_id: BPF_F_CURRENT_NETNS
        .store_imm(Size::W, FP, OPTS + 4, 0) // error
        .store_imm(Size::W, FP, OPTS + 8, 0) // l4proto, dir, reserved[2]
        .store(Size::B, FP, OPTS + 8, R7)
        .mov(R1, R6)
        .mov(R2, FP)
        .add_imm(R2, TUPLE.into())
        .mov_imm(R3, TUPLE_LEN)
        .mov(R4, FP)
        .add_imm(R4, OPTS.into())
        .mov_imm(R5, OPTS_LEN)
        .call_kfunc(refs.ct_lookup)
        .jmp_imm(Cond::Eq, R0, 0, "untracked")
        .mov(R1, R0)
        .call_kfunc(refs.ct_release)
        .ja("pass_tracked")
        .label("untracked")
        // Only "no such entry" means untracked: any other lookup error
        // leaves the packet to the stack.
        .load(Size::W, R5, FP, OPTS + 4)
        .jmp32_imm(Cond::Ne, R5, -ENOENT, "pass");

    // 4. Route it as the stack would.
    fib_query(&mut a, (0, 4), (8, 10));
    a.mov(R7, R0) // the answer, kept across the calls below
        .jmp_imm(Cond::Eq, R7, 0, "routed") // BPF_FIB_LKUP_RET_SUCCESS
        .jmp_imm(Cond::Ne, R7, BPF_FIB_LKUP_RET_NO_NEIGH, "pass_no_fib")
        .label("routed");

    // TTL - 1 and the header checksum (TTL > 1 was checked: no borrow).
    bounds(&mut a, HEADERS_END, "pass");
    a.load(Size::H, R8, R2, IP_TTL) // TTL and protocol, as one 16-bit word
        .mov(R9, R8)
        .sub_imm(R9, 1)
        .store(Size::H, R2, IP_TTL, R9)
        .mov(R1, R6)
        .mov_imm(R2, IP_CHECK)
        .mov(R3, R8)
        .mov(R4, R9)
        .mov_imm(R5, 2)
        .call(BPF_FUNC_L3_CSUM_REPLACE)
        .jmp_imm(Cond::Ne, R0, 0, "drop")
        .jmp_imm(Cond::Eq, R7, BPF_FIB_LKUP_RET_NO_NEIGH, "resolve");
    // MACs from the FIB answer: dmac at +58, smac at +52 (2-byte moves:
    // the stack only allows aligned access).
    bounds(&mut a, 14, "drop");
    for i in 0..3i16 {
        a.load(Size::H, R5, FP, FIB + 58 + 2 * i)
            .store(Size::H, R2, 2 * i, R5)
            .load(Size::H, R5, FP, FIB + 52 + 2 * i)
            .store(Size::H, R2, 6 + 2 * i, R5);
    }
    count(&mut a, refs, STAT_FORWARDED, "counted_fwd");
    a.load(Size::W, R5, FP, FIB + 8) // the route's device
        .store(Size::W, FP, IFACE_KEY, R5)
        .load_map(R1, refs.pod_ifaces_map)
        .mov(R2, FP)
        .add_imm(R2, IFACE_KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM)
        .load(Size::W, R1, FP, IFACE_KEY)
        .mov_imm(R2, 0)
        .jmp_imm(Cond::Eq, R0, 0, "out_of_device")
        .call(BPF_FUNC_REDIRECT_PEER) // into the pod
        .exit()
        .label("out_of_device")
        .call(BPF_FUNC_REDIRECT)
        .exit();

    // Unresolved next hop: the FIB answer still names the device and the
    // next hop (gateway or the destination itself).
    a.label("resolve");
    for off in (0..NEIGH_LEN as i16).step_by(4) {
        a.store_imm(Size::W, FP, NEIGH + off, 0);
    }
    a.store_imm(Size::W, FP, NEIGH, libc::AF_INET)
        .load(Size::W, R5, FP, FIB + 32)
        .store(Size::W, FP, NEIGH + 4, R5);
    count(&mut a, refs, STAT_FORWARDED, "counted_neigh");
    a.load(Size::W, R1, FP, FIB + 8)
        .mov(R2, FP)
        .add_imm(R2, NEIGH.into())
        .mov_imm(R3, NEIGH_LEN)
        .mov_imm(R4, 0)
        .call(BPF_FUNC_REDIRECT_NEIGH)
        .exit();

    a.label("pass_tracked");
    count(&mut a, refs, STAT_TRACKED, "counted_tracked");
    a.ja("pass").label("pass_no_fib");
    count(&mut a, refs, STAT_NO_FIB, "counted_no_fib");
    a.label("pass").mov_imm(R0, TC_ACT_UNSPEC).exit();
    a.label("drop").mov_imm(R0, TC_ACT_SHOT).exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_with_every_label_placed() {
        let refs = Refs {
            cidrs_map: 3,
            stats_map: 4,
            pod_ifaces_map: 5,
            ct_lookup: 100,
            ct_release: 101,
        };
        let p = fast_path(&refs);
        assert!(p.len() > 100 && p.len() < 400, "{} instructions", p.len());
        // Ends in `exit`.
        assert_eq!(p.last().unwrap().to_ne_bytes()[0], 0x95);
    }
}
