// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//! VXLAN in the program itself, to and from the peers ferryd reaches
//! through its tunnel device, so that a pod↔pod flow across subnets skips
//! the host's stack on both nodes as it does on one subnet: no trip
//! through the tunnel device, no netfilter or conntrack for the outer
//! UDP packets, no UDP socket lookup and no second receive queue on the
//! way in. The packets on the wire are exactly what the kernel's device
//! would send (same VNI, port, MACs and underlay addresses), and either
//! side may be the kernel's.
//!
//! What ferryd tells the program (see `crate::tunnel`): the `tunnel` map
//! (one [`CONFIG_LEN`]-byte entry: the device, the uplink, this node's
//! underlay address, VNI, MAC and port; device 0 means off) and the
//! `vteps` map (peer VTEP MAC → its underlay IPv4: the device's FDB).
//!
//! * **Out** ([`encap`]): a packet the FIB routes into the tunnel device,
//!   to a next hop whose MAC is a known peer's, gets the 50 bytes of outer
//!   IPv4, UDP and VXLAN headers and the inner Ethernet header pushed in
//!   with `bpf_skb_adjust_room` (its ENCAP flags make a GSO packet one
//!   the kernel segments as a UDP tunnel packet, as the device's would
//!   be), and goes out of the uplink through the neighbour subsystem
//!   (`bpf_redirect_neigh`). Anything else goes into the device as before.
//! * **In** ([`detect`], [`decap`]): a VXLAN packet to this node's underlay
//!   address, port and VNI, for this node's VTEP MAC, from the underlay
//!   address the FDB gives its source MAC, runs the family's path on the
//!   inner packet as if received on the tunnel device. Only when that
//!   path would forward it into a pod of this node are the outer headers
//!   removed; else it goes to the stack as it came, and the kernel's
//!   device decapsulates it.

use super::*;
use crate::insn::{R7, R8, R9};

/// The bytes VXLAN puts before the inner IP header: outer IPv4 (20), UDP
/// (8), VXLAN (8) and the inner Ethernet header (14).
pub(super) const OUTER_LEN: i16 = 50;
/// The inner Ethernet header's end, from the start of the frame.
const OUTER_END: i32 = ETH_HLEN + OUTER_LEN as i32;

/// The `tunnel` map's value: tunnel ifindex @0 (host order, 0 = off),
/// uplink ifindex @4, this node's underlay IPv4 @8, the VXLAN header's
/// second word (VNI, 3 bytes, and a zero byte) @12, the device's MAC @16,
/// the UDP port @22; addresses, VNI and port in network order.
pub const CONFIG_LEN: u32 = 24;
const CFG_IFINDEX: i16 = 0;
const CFG_UPLINK: i16 = 4;
const CFG_LOCAL: i16 = 8;
const CFG_VNI: i16 = 12;
const CFG_MAC: i16 = 16;
const CFG_PORT: i16 = 22;

const BPF_FUNC_SKB_STORE_BYTES: i32 = 9;
const BPF_FUNC_CSUM_DIFF: i32 = 28;
const BPF_FUNC_GET_HASH_RECALC: i32 = 34;
const BPF_FUNC_SKB_ADJUST_ROOM: i32 = 50;
const BPF_ADJ_ROOM_MAC: i32 = 1;
const BPF_F_ADJ_ROOM_FIXED_GSO: u64 = 1 << 0;
const BPF_F_ADJ_ROOM_ENCAP_L3_IPV4: u64 = 1 << 1;
const BPF_F_ADJ_ROOM_ENCAP_L4_UDP: u64 = 1 << 4;
const BPF_F_ADJ_ROOM_ENCAP_L2_ETH: u64 = 1 << 6;
/// Linux 6.3+: sets the packet's protocol to the inner IPv6 header's.
const BPF_F_ADJ_ROOM_DECAP_L3_IPV6: u64 = 1 << 8;
/// `BPF_F_ADJ_ROOM_ENCAP_L2(len)`: the inner L2 header's length.
const fn encap_l2(len: u64) -> u64 {
    len << 56
}

/// R8 = the `tunnel` map's entry, when it names a device; else jumps to
/// `off`. Clobbers R0–R5.
fn config(a: &mut Asm, refs: &Refs, off: &str) {
    a.store_imm(Size::W, FP, CFG_KEY, 0)
        .load_map(R1, refs.tunnel_map)
        .mov(R2, FP)
        .add_imm(R2, CFG_KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM)
        .jmp_imm(Cond::Eq, R0, 0, off)
        .mov(R8, R0)
        .load(Size::W, R5, R8, CFG_IFINDEX)
        .jmp_imm(Cond::Eq, R5, 0, off);
}

/// R0 = the `vteps` entry (the peer's underlay IPv4) of the MAC in
/// `VTEP_KEY`, or 0.
fn peer(a: &mut Asm, refs: &Refs) {
    a.load_map(R1, refs.vteps_map)
        .mov(R2, FP)
        .add_imm(R2, VTEP_KEY.into())
        .call(BPF_FUNC_MAP_LOOKUP_ELEM);
}

/// Goes on to `v4` unless the packet's field at `packet` (R2 = its start)
/// equals the tunnel entry's at `config` (R8).
fn same(a: &mut Asm, size: Size, packet: i16, config: i16) {
    a.load(size, R5, R2, packet)
        .load(size, R4, R8, config)
        .jmp_reg(Cond::Ne, R5, R4, "v4");
}

/// At the start of the IPv4 path: a VXLAN packet from a peer, to this
/// node, jumps to the inner family's path (`v4x`, `v6x`) with `IN_IF` set
/// to the tunnel device; anything else goes on to `v4`.
pub(super) fn detect(a: &mut Asm, refs: &Refs) {
    // Outer IPv4 without options or fragments, UDP, long enough to hold
    // the inner Ethernet header.
    bounds(a, OUTER_END, "v4");
    a.load(Size::B, R5, R2, 14)
        .jmp_imm(Cond::Ne, R5, 0x45, "v4")
        .load(Size::H, R5, R2, 20)
        .and_imm(R5, 0xff3f) // MF and the offset, in network order
        .jmp_imm(Cond::Ne, R5, 0, "v4")
        .load(Size::B, R5, R2, 23)
        .jmp_imm(Cond::Ne, R5, 17, "v4");
    config(a, refs, "v4");
    bounds(a, OUTER_END, "v4");
    // To this node's address and port; the VXLAN header with only the
    // I flag and this VNI; the inner frame to this node's VTEP MAC.
    same(a, Size::H, 36, CFG_PORT);
    same(a, Size::W, 30, CFG_LOCAL);
    a.load(Size::W, R5, R2, 42)
        .jmp32_imm(Cond::Ne, R5, 0x08, "v4"); // bytes 08 00 00 00
    same(a, Size::W, 46, CFG_VNI);
    same(a, Size::W, 50, CFG_MAC);
    same(a, Size::H, 54, CFG_MAC + 4);
    // From the underlay address the FDB gives the inner source MAC: a
    // peer ferryd knows, and no one else.
    a.store_imm(Size::DW, FP, VTEP_KEY, 0)
        .load(Size::W, R5, R2, 56)
        .store(Size::W, FP, VTEP_KEY, R5)
        .load(Size::H, R5, R2, 60)
        .store(Size::H, FP, VTEP_KEY + 4, R5)
        .load(Size::W, R5, R2, 26)
        .store(Size::W, FP, OUTER_SRC, R5)
        .load(Size::H, R5, R2, 62)
        .store(Size::H, FP, INNER_PROTO, R5);
    peer(a, refs);
    a.jmp_imm(Cond::Eq, R0, 0, "v4")
        .load(Size::W, R5, R0, 0)
        .load(Size::W, R4, FP, OUTER_SRC)
        .jmp_reg(Cond::Ne, R5, R4, "v4")
        .load(Size::W, R9, R8, CFG_IFINDEX)
        .load(Size::H, R5, FP, INNER_PROTO)
        .jmp_imm(Cond::Eq, R5, 0x0008, "vx_inner_v4") // htons(ETH_P_IP)
        .jmp_imm(Cond::Ne, R5, 0xdd86, "v4") // htons(ETH_P_IPV6)
        .store(Size::W, FP, IN_IF, R9)
        .ja("v6x")
        .label("vx_inner_v4")
        .store(Size::W, FP, IN_IF, R9)
        .ja("v4x");
}

/// On an inner family's path, R7 holding the FIB answer: into a pod of
/// this node (else `pass`, still encapsulated), the outer headers
/// removed (the outer Ethernet header stays, for `rewrite` to fill).
pub(super) fn decap(a: &mut Asm, refs: &Refs, af: i32) {
    a.jmp_imm(Cond::Ne, R7, 0, "pass_no_fib") // BPF_FIB_LKUP_RET_SUCCESS only
        .load(Size::W, R5, FP, FIB + 8)
        .store(Size::W, FP, IFACE_KEY, R5);
    is_pod_iface(a, refs, IFACE_KEY);
    // The inner packet keeps its GSO size; IPv6 inside needs the packet's
    // protocol changed, which Linux 6.3 added (older kernels refuse the
    // flag: the stack decapsulates those).
    let flags = if af == libc::AF_INET6 {
        BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV6
    } else {
        BPF_F_ADJ_ROOM_FIXED_GSO
    };
    a.jmp_imm(Cond::Eq, R0, 0, "pass")
        .mov(R1, R6)
        .mov_imm(R2, -i32::from(OUTER_LEN))
        .mov_imm(R3, BPF_ADJ_ROOM_MAC)
        .ld_imm64(R4, flags)
        .call(BPF_FUNC_SKB_ADJUST_ROOM)
        .jmp_imm(Cond::Ne, R0, 0, "pass"); // nothing changed
    if af == libc::AF_INET6 {
        bounds(a, ETH_HLEN, "drop");
        a.store_imm(Size::H, R2, ETH_PROTO, 0xdd86);
    }
    count(a, refs, STAT_DECAPSULATED, &format!("counted_decap_{af}"));
}

/// In `rewrite`, for a packet the FIB sends out of a device (its ifindex
/// in `IFACE_KEY`, MACs written): when that device is the tunnel and the
/// next hop's MAC a peer's, encapsulates and sends it out of the uplink;
/// else jumps to `into_device`.
pub(super) fn encap(a: &mut Asm, refs: &Refs) {
    config(a, refs, "into_device");
    a.load(Size::W, R5, R8, CFG_IFINDEX)
        .load(Size::W, R4, FP, IFACE_KEY)
        .jmp_reg(Cond::Ne, R5, R4, "into_device")
        .store_imm(Size::DW, FP, VTEP_KEY, 0);
    for i in 0..3i16 {
        a.load(Size::H, R5, FP, FIB + 58 + 2 * i)
            .store(Size::H, FP, VTEP_KEY + 2 * i, R5);
    }
    peer(a, refs);
    a.jmp_imm(Cond::Eq, R0, 0, "into_device")
        .load(Size::W, R9, R0, 0) // R9 = the peer's underlay address
        .load(Size::W, R7, R6, SKB_LEN); // R7 = the frame's length

    // The 50 bytes, built on the stack (ENC + i is frame offset 14 + i).
    for off in (0..56).step_by(8) {
        a.store_imm(Size::DW, FP, ENC + off, 0);
    }
    // IPv4: version 4, 20 bytes, total length, DF, TTL 64, UDP.
    a.store_imm(Size::B, FP, ENC, 0x45)
        .mov(R5, R7)
        .add_imm(R5, i32::from(OUTER_LEN) - ETH_HLEN)
        .be16(R5)
        .store(Size::H, FP, ENC + 2, R5)
        .store_imm(Size::H, FP, ENC + 6, 0x0040) // bytes 40 00: DF
        .store_imm(Size::B, FP, ENC + 8, 64)
        .store_imm(Size::B, FP, ENC + 9, 17)
        .load(Size::W, R5, R8, CFG_LOCAL)
        .store(Size::W, FP, ENC + 12, R5)
        .store(Size::W, FP, ENC + 16, R9);
    // UDP: the source port from the flow's hash (49152–65535, as the
    // device spreads flows for the underlay's ECMP), the port, the
    // length; checksum 0 (IPv4 allows it; the device sends 0 too).
    a.mov(R1, R6)
        .call(BPF_FUNC_GET_HASH_RECALC)
        .and_imm(R0, 0x3fff)
        .or_imm(R0, 0xc000)
        .be16(R0)
        .store(Size::H, FP, ENC + 20, R0)
        .load(Size::H, R5, R8, CFG_PORT)
        .store(Size::H, FP, ENC + 22, R5)
        .mov(R5, R7)
        .add_imm(R5, i32::from(OUTER_LEN) - ETH_HLEN - 20)
        .be16(R5)
        .store(Size::H, FP, ENC + 24, R5);
    // VXLAN: the I flag, the VNI.
    a.store_imm(Size::W, FP, ENC + 28, 0x08)
        .load(Size::W, R5, R8, CFG_VNI)
        .store(Size::W, FP, ENC + 32, R5);
    // The inner Ethernet header: the MACs `rewrite` wrote (the peer's
    // VTEP, the device's), the packet's own protocol.
    for i in 0..3i16 {
        a.load(Size::H, R5, FP, FIB + 58 + 2 * i)
            .store(Size::H, FP, ENC + 36 + 2 * i, R5)
            .load(Size::H, R5, FP, FIB + 52 + 2 * i)
            .store(Size::H, FP, ENC + 42 + 2 * i, R5);
    }
    bounds(a, ETH_HLEN, "into_device");
    a.load(Size::H, R5, R2, ETH_PROTO)
        .store(Size::H, FP, ENC + 48, R5);
    // The IPv4 header checksum: the 20 bytes summed, folded, inverted.
    a.mov_imm(R1, 0)
        .mov_imm(R2, 0)
        .mov(R3, FP)
        .add_imm(R3, ENC.into())
        .mov_imm(R4, 20)
        .mov_imm(R5, 0)
        .call(BPF_FUNC_CSUM_DIFF);
    for _ in 0..2 {
        a.mov(R1, R0)
            .and_imm(R1, 0xffff)
            .rsh_imm(R0, 16)
            .add(R0, R1);
    }
    a.xor_imm(R0, 0xffff).store(Size::H, FP, ENC + 10, R0);

    // Room after the Ethernet header (which becomes the outer one): the
    // kernel records the inner headers and, for a GSO packet, that it is
    // a UDP tunnel packet; the inner MSS stays (the pod's MTU left room).
    a.mov(R1, R6)
        .mov_imm(R2, OUTER_LEN.into())
        .mov_imm(R3, BPF_ADJ_ROOM_MAC)
        .ld_imm64(
            R4,
            BPF_F_ADJ_ROOM_FIXED_GSO
                | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
                | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
                | BPF_F_ADJ_ROOM_ENCAP_L2_ETH
                | encap_l2(ETH_HLEN as u64),
        )
        .call(BPF_FUNC_SKB_ADJUST_ROOM)
        // Refused (a frame the device's MTU could not take grown, say):
        // nothing changed, the device encapsulates it.
        .jmp_imm(Cond::Ne, R0, 0, "into_device")
        .mov(R1, R6)
        .mov_imm(R2, ETH_HLEN)
        .mov(R3, FP)
        .add_imm(R3, ENC.into())
        .mov_imm(R4, OUTER_LEN.into())
        .mov_imm(R5, 0)
        .call(BPF_FUNC_SKB_STORE_BYTES)
        .jmp_imm(Cond::Ne, R0, 0, "drop");
    count(a, refs, STAT_ENCAPSULATED, "counted_encap");
    // Out of the uplink: the kernel routes the outer destination and
    // writes the outer MACs.
    a.load(Size::W, R1, R8, CFG_UPLINK)
        .mov_imm(R2, 0)
        .mov_imm(R3, 0)
        .mov_imm(R4, 0)
        .call(BPF_FUNC_REDIRECT_NEIGH)
        .exit();
}
