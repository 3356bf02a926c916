// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//! ferry's fast path: a tc ingress program, attached to the node's uplink
//! and to every pod's host-side veth, that forwards pod↔pod TCP/UDP (IPv4
//! and IPv6) without the host's IP stack (no netfilter, no second trip
//! through the forwarding code) whenever doing so cannot change what the
//! stack would have done. The program text is offered under Apache-2.0 or
//! GPL-2.0 (it declares "GPL" to the kernel, which requires it for the FIB
//! helper).
//!
//! A packet is forwarded here only when all of these hold; anything else
//! goes to the stack unchanged (`TC_ACT_UNSPEC`):
//! 1. IPv4 without options or fragmentation, or IPv6 without extension
//!    headers; TCP or UDP; TTL (hop limit) > 1;
//! 2. source and destination both inside the cluster's pod CIDRs (the
//!    `cidrs` maps the agent fills), so masquerade never applies, and
//!    neither excluded: a pod isolated by any NetworkPolicy (ingress or
//!    egress) on this node leaves the fast path in both directions, since
//!    policy is enforced in nftables at the forward hook, which this path
//!    skips. The agent puts each such pod's address into the same maps as
//!    a host prefix (/32, /128) whose value has the `EXCLUDED` bit;
//!    longest-prefix match returns it over the pod CIDR (value `CLUSTER`),
//!    so the lookups this test already does decide it, with one more load
//!    and compare each: the match must be exactly `CLUSTER`;
//! 3. from a pod (its host veth is in the `pod_ifaces` map, which the
//!    plugin fills): the source address routes back to that veth, as strict
//!    reverse-path filtering requires, so a pod cannot borrow another's;
//! 4. conntrack has no entry for the flow on this node: a Service's DNAT
//!    (kube-proxy) and its reverse on replies, and anything else the stack
//!    tracks, keep going through netfilter. A flow never tracked here stays
//!    untracked here in both directions, because both directions meet this
//!    same test;
//! 5. the kernel's FIB has a route for it (the same lookup the stack would
//!    do); then the TTL is decremented, MACs set and the packet sent out of
//!    the route's device: straight into the pod's namespace when that
//!    device is a pod's host veth (`bpf_redirect_peer` skips the veth's
//!    receive queue), else out of the device. When the next hop's MAC is
//!    not resolved yet, the neighbour subsystem resolves it
//!    (`bpf_redirect_neigh`), so even a flow's first packet stays off the
//!    stack.
//!
//! Packets to and from nodes behind ferryd's VXLAN device are
//! encapsulated and decapsulated here, under the same tests on the inner
//! packet: see [`vxlan`].
//!
//! Per-CPU counters: [`STAT_FORWARDED`], [`STAT_TRACKED`], [`STAT_NO_FIB`],
//! [`STAT_ENCAPSULATED`], [`STAT_DECAPSULATED`].

mod family;
pub mod vxlan;

use crate::cidrs::CLUSTER;
use crate::insn::{Asm, Cond, Size, FP, R0, R1, R2, R3, R4, R5, R6};
use family::{V4, V4_IN_VXLAN, V6, V6_IN_VXLAN};

/// Packets forwarded by the program.
pub const STAT_FORWARDED: u32 = 0;
/// Pod↔pod packets left to the stack because conntrack tracks their flow.
pub const STAT_TRACKED: u32 = 1;
/// Pod↔pod packets left to the stack because the FIB lookup did not
/// succeed (no route, MTU, forwarding off).
pub const STAT_NO_FIB: u32 = 2;
/// Packets the program put into VXLAN itself (also counted forwarded).
pub const STAT_ENCAPSULATED: u32 = 3;
/// VXLAN packets the program took the outer headers off (also counted
/// forwarded).
pub const STAT_DECAPSULATED: u32 = 4;
/// Slots in the stats map.
pub const STATS: u32 = 5;

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
const SKB_LEN: i16 = 0;
const SKB_INGRESS_IFINDEX: i16 = 36;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
const SKB_GSO_SIZE: i16 = 176;

const ETH_HLEN: i32 = 14;
const ETH_PROTO: i16 = 12;

// The stack frame (offsets from the frame pointer; the stack allows
// aligned access only).
/// struct bpf_fib_lookup (64 bytes): family @0, l4_protocol @1, sport @2,
/// dport @4, ifindex @8, tos/flowinfo @12, src @16, dst @32, smac @52,
/// dmac @58.
const FIB: i16 = -64;
const FIB_LEN: i32 = 64;
/// struct bpf_sock_tuple (12 bytes for IPv4, 36 for IPv6): saddr, daddr,
/// sport, dport.
const TUPLE: i16 = -104;
/// struct bpf_ct_opts as of Linux 6.1 (12 bytes).
const OPTS: i16 = -120;
const OPTS_LEN: i32 = 12;
/// LPM trie key: prefixlen, then the address (4 or 16 bytes).
const KEY: i16 = -144;
/// struct bpf_redir_neigh (20 bytes): family, next hop (4 or 16 bytes).
const NEIGH: i16 = -168;
const NEIGH_LEN: i32 = 20;
const STAT_KEY: i16 = -172;
const IFACE_KEY: i16 = -176;
/// The IPv4 TOS byte, or the IPv6 header's first word (flow label).
const TOS: i16 = -180;
/// The device the packet counts as received on, for the FIB: its ingress
/// device, or the tunnel device for a packet decapsulated here.
const IN_IF: i16 = -184;
/// The `tunnel` map's key (0).
const CFG_KEY: i16 = -188;
/// A VXLAN packet's outer source address.
const OUTER_SRC: i16 = -196;
/// A VXLAN packet's inner Ethernet protocol.
const INNER_PROTO: i16 = -200;
/// The `vteps` map's key: a MAC and two zero bytes.
const VTEP_KEY: i16 = -208;
/// The outer headers being built (56 bytes; 50 used).
const ENC: i16 = -264;

/// The maps and kernel functions the program refers to.
#[derive(Debug, Clone, Copy)]
pub struct Refs {
    /// The cluster's IPv4 pod CIDRs (LPM trie, 8-byte keys).
    pub cidrs_map: i32,
    /// The cluster's IPv6 pod CIDRs (LPM trie, 20-byte keys).
    pub cidrs6_map: i32,
    pub stats_map: i32,
    /// ifindex → 1 for every pod's host veth.
    pub pod_ifaces_map: i32,
    /// The VXLAN settings (array, one [`vxlan::CONFIG_LEN`]-byte entry).
    pub tunnel_map: i32,
    /// Peer VTEP MAC (8-byte keys) → its underlay IPv4.
    pub vteps_map: i32,
    /// `bpf_skb_ct_lookup` and `bpf_ct_release`: (BTF id, index of their
    /// module's BTF fd in the load's `fd_array`, 0 for vmlinux).
    pub ct_lookup: (u32, i16),
    pub ct_release: (u32, i16),
}

/// `stats[idx] += 1` (per-CPU, so no atomics). Clobbers R0–R5.
fn count(a: &mut Asm, refs: &Refs, idx: u32, skip: &str) {
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
fn bounds(a: &mut Asm, len: i32, short: &str) {
    a.load(Size::W, R2, R6, SKB_DATA)
        .load(Size::W, R3, R6, SKB_DATA_END)
        .mov(R4, R2)
        .add_imm(R4, len)
        .jmp_reg(Cond::Gt, R4, R3, short);
}

/// R0 = whether the ifindex stored at `key` is a pod's host veth (the map
/// value, or 0).
fn is_pod_iface(a: &mut Asm, refs: &Refs, key: i16) {
    a.load_map(R1, refs.pod_ifaces_map)
        .mov(R2, FP)
        .add_imm(R2, key.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM);
}

/// The program's instructions.
pub fn fast_path(refs: &Refs) -> Vec<u64> {
    let mut a = Asm::new();
    a.mov(R6, R1) // R6 = skb for the whole program
        .load(Size::W, R5, R6, SKB_INGRESS_IFINDEX)
        .store(Size::W, FP, IN_IF, R5);
    bounds(&mut a, ETH_HLEN, "pass");
    a.load(Size::H, R5, R2, ETH_PROTO)
        .jmp_imm(Cond::Eq, R5, 0x0008, "outer_v4") // htons(ETH_P_IP)
        .jmp_imm(Cond::Eq, R5, 0xdd86, "v6") // htons(ETH_P_IPV6)
        .ja("pass")
        .label("outer_v4");
    vxlan::detect(&mut a, refs);
    for f in [&V4, &V6, &V4_IN_VXLAN, &V6_IN_VXLAN] {
        a.label(f.tag);
        family::path(&mut a, refs, f);
    }

    // Routed (FIB answered, TTL done): MACs from the FIB answer (2-byte
    // moves: the stack only allows aligned access), then out.
    a.label("rewrite");
    bounds(&mut a, ETH_HLEN, "drop");
    for i in 0..3i16 {
        a.load(Size::H, R5, FP, FIB + 58 + 2 * i)
            .store(Size::H, R2, 2 * i, R5)
            .load(Size::H, R5, FP, FIB + 52 + 2 * i)
            .store(Size::H, R2, 6 + 2 * i, R5);
    }
    count(&mut a, refs, STAT_FORWARDED, "counted_fwd");
    a.load(Size::W, R5, FP, FIB + 8) // the route's device
        .store(Size::W, FP, IFACE_KEY, R5);
    is_pod_iface(&mut a, refs, IFACE_KEY);
    a.load(Size::W, R1, FP, IFACE_KEY)
        .mov_imm(R2, 0)
        .jmp_imm(Cond::Eq, R0, 0, "out_of_device")
        .call(BPF_FUNC_REDIRECT_PEER) // into the pod
        .exit()
        .label("out_of_device");
    vxlan::encap(&mut a, refs);
    a.label("into_device")
        .load(Size::W, R1, FP, IFACE_KEY)
        .mov_imm(R2, 0)
        .call(BPF_FUNC_REDIRECT)
        .exit();

    // Unresolved next hop: NEIGH was filled by the family's path.
    a.label("resolve");
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

    const REFS: Refs = Refs {
        cidrs_map: 3,
        cidrs6_map: 6,
        stats_map: 4,
        pod_ifaces_map: 5,
        tunnel_map: 7,
        vteps_map: 8,
        ct_lookup: (100, 0),
        ct_release: (101, 1),
    };

    /// (opcode, dst, src, off, imm) of each instruction.
    fn decode(p: &[u64]) -> Vec<(u8, u8, u8, i16, i32)> {
        p.iter()
            .map(|i| {
                let b = i.to_ne_bytes();
                let off = i16::from_ne_bytes([b[2], b[3]]);
                let imm = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
                (b[0], b[1] & 0x0f, b[1] >> 4, off, imm)
            })
            .collect()
    }

    #[test]
    fn each_cidr_lookup_passes_unless_the_match_is_exactly_cluster() {
        let p = decode(&fast_path(&REFS));
        for map in [REFS.cidrs_map, REFS.cidrs6_map] {
            // `r1 = map` (ld_imm64, pseudo map fd) ... `call lookup`.
            let loads: Vec<usize> = (0..p.len())
                .filter(|&i| p[i].0 == 0x18 && p[i].2 == 1 && p[i].4 == map)
                .collect();
            assert_eq!(
                loads.len(),
                4,
                "map {map}: source and destination, plain and inside VXLAN"
            );
            for i in loads {
                let call = (i..p.len()).find(|&j| p[j].0 == 0x85).unwrap();
                assert_eq!(p[call].4, BPF_FUNC_MAP_LOOKUP_ELEM);
                let (null, value, cmp) = (p[call + 1], p[call + 2], p[call + 3]);
                assert_eq!((null.0, null.1, null.4), (0x15, 0, 0), "if r0 == 0");
                assert_eq!((value.0, value.1, value.2, value.3), (0x61, 5, 0, 0));
                assert_eq!((cmp.0, cmp.1, cmp.4), (0x55, 5, CLUSTER as i32));
                // Both jump to `pass`: r0 = TC_ACT_UNSPEC.
                let to_null = call + 2 + null.3 as usize;
                let to_cmp = call + 4 + cmp.3 as usize;
                assert_eq!(to_null, to_cmp);
                assert_eq!((p[to_null].0, p[to_null].4), (0xb7, TC_ACT_UNSPEC));
            }
        }
    }

    #[test]
    fn assembles_with_every_label_placed() {
        let p = fast_path(&REFS);
        assert!(p.len() > 150 && p.len() < 1200, "{} instructions", p.len());
        // Ends in `exit`.
        assert_eq!(p.last().unwrap().to_ne_bytes()[0], 0x95);
    }
}
