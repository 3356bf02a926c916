//! A small eBPF assembler: instruction encodings (`<linux/bpf.h>`,
//! `Documentation/bpf/standardization/instruction-set.rst`) and forward
//! jumps to named labels, resolved when the program is finished.
//!
//! ferry's one program is short enough to read as assembly, and writing it
//! here means the project needs no BPF compiler, ELF loader or libbpf.

use std::collections::HashMap;

/// A register. `R0` return value, `R1`–`R5` arguments (clobbered by calls),
/// `R6`–`R9` callee-saved, `R10` the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
pub const FP: Reg = Reg(10);

/// Memory access width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// Conditional jump tests (64-bit compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Ne,
    /// Unsigned >.
    Gt,
    /// Unsigned <=.
    Le,
}

impl Cond {
    fn op(self) -> u8 {
        match self {
            Cond::Eq => 0x10,
            Cond::Gt => 0x20,
            Cond::Ne => 0x50,
            Cond::Le => 0xb0,
        }
    }
}

const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
const MEM: u8 = 0x60;
const IMM: u8 = 0x00;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const ALU_ADD: u8 = 0x00;
const ALU_SUB: u8 = 0x10;
const ALU_OR: u8 = 0x40;
const ALU_AND: u8 = 0x50;
const ALU_RSH: u8 = 0x70;
const ALU_XOR: u8 = 0xa0;
const ALU_END: u8 = 0xd0;
/// The 32-bit ALU class (`BPF_ALU`), where the byte-swap instructions live.
const ALU: u8 = 0x04;
/// `BPF_TO_BE`: convert to big-endian (network order).
const END_TO_BE: u8 = 0x08;
const ALU_MOV: u8 = 0xb0;
const JMP_JA: u8 = 0x00;
const JMP_CALL: u8 = 0x80;
const JMP_EXIT: u8 = 0x90;
/// `src_reg` of a 64-bit immediate load that names a map by fd.
const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of a call to a kernel function by BTF id.
const PSEUDO_KFUNC_CALL: u8 = 2;

/// One encoded instruction: opcode, dst (low nibble) and src registers,
/// 16-bit offset, 32-bit immediate, in host byte order.
fn encode(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> u64 {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src.0 << 4) | (dst.0 & 0x0f);
    b[2..4].copy_from_slice(&off.to_ne_bytes());
    b[4..8].copy_from_slice(&imm.to_ne_bytes());
    u64::from_ne_bytes(b)
}

/// A program being written. Jumps name labels; [`Asm::finish`] resolves them.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<u64>,
    labels: HashMap<String, usize>,
    /// (instruction index, label) of every jump to patch.
    fixups: Vec<(usize, String)>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, insn: u64) -> &mut Asm {
        self.insns.push(insn);
        self
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.push(encode(ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0))
    }
    /// `dst = imm` (sign-extended).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_MOV | SRC_K, dst, R0, 0, imm))
    }
    /// `dst += imm`.
    pub fn add_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_ADD | SRC_K, dst, R0, 0, imm))
    }
    /// `dst -= imm`.
    pub fn sub_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_SUB | SRC_K, dst, R0, 0, imm))
    }
    /// `dst &= imm`.
    pub fn and_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_AND | SRC_K, dst, R0, 0, imm))
    }
    /// `dst |= imm`.
    pub fn or_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_OR | SRC_K, dst, R0, 0, imm))
    }
    /// `dst ^= imm`.
    pub fn xor_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_XOR | SRC_K, dst, R0, 0, imm))
    }
    /// `dst >>= imm` (logical).
    pub fn rsh_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(encode(ALU64 | ALU_RSH | SRC_K, dst, R0, 0, imm))
    }
    /// `dst += src`.
    pub fn add(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.push(encode(ALU64 | ALU_ADD | SRC_X, dst, src, 0, 0))
    }
    /// `dst = htons(dst)`: the low 16 bits in network order, the rest
    /// zero; stored with a 2-byte store, the bytes land big-endian.
    pub fn be16(&mut self, dst: Reg) -> &mut Asm {
        self.push(encode(ALU | ALU_END | END_TO_BE, dst, R0, 0, 16))
    }
    /// `dst = imm` (a full 64-bit immediate: two instruction slots).
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) -> &mut Asm {
        self.push(encode(
            LD | IMM | Size::DW.bits(),
            dst,
            R0,
            0,
            imm as u32 as i32,
        ));
        self.push(encode(0, R0, R0, 0, (imm >> 32) as u32 as i32))
    }
    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.push(encode(LDX | MEM | size.bits(), dst, src, off, 0))
    }
    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(encode(STX | MEM | size.bits(), dst, src, off, 0))
    }
    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Asm {
        self.push(encode(ST | MEM | size.bits(), dst, R0, off, imm))
    }
    /// `dst = map` (the map's fd, which the kernel turns into a pointer).
    pub fn load_map(&mut self, dst: Reg, map_fd: i32) -> &mut Asm {
        self.push(encode(
            LD | IMM | Size::DW.bits(),
            dst,
            Reg(PSEUDO_MAP_FD),
            0,
            map_fd,
        ));
        self.push(0)
    }
    /// Calls helper `id` (`BPF_FUNC_*`).
    pub fn call(&mut self, id: i32) -> &mut Asm {
        self.push(encode(JMP | JMP_CALL, R0, R0, 0, id))
    }
    /// Calls the kernel function with BTF id `btf_id`: in vmlinux when
    /// `btf_fd_index` is 0, else in the module whose BTF fd is at that
    /// index of the `fd_array` the program is loaded with.
    pub fn call_kfunc(&mut self, btf_id: u32, btf_fd_index: i16) -> &mut Asm {
        self.push(encode(
            JMP | JMP_CALL,
            R0,
            Reg(PSEUDO_KFUNC_CALL),
            btf_fd_index,
            btf_id as i32,
        ))
    }
    pub fn exit(&mut self) -> &mut Asm {
        self.push(encode(JMP | JMP_EXIT, R0, R0, 0, 0))
    }
    /// `goto label`.
    pub fn ja(&mut self, label: &str) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(JMP | JMP_JA, R0, R0, 0, 0))
    }
    /// `if dst <cond> imm goto label`.
    pub fn jmp_imm(&mut self, cond: Cond, dst: Reg, imm: i32, label: &str) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(JMP | cond.op() | SRC_K, dst, R0, 0, imm))
    }
    /// `if (u32)dst <cond> (u32)imm goto label`: a 32-bit compare, for
    /// values loaded with 32-bit loads (which zero-extend).
    pub fn jmp32_imm(&mut self, cond: Cond, dst: Reg, imm: i32, label: &str) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(JMP32 | cond.op() | SRC_K, dst, R0, 0, imm))
    }
    /// `if dst <cond> src goto label`.
    pub fn jmp_reg(&mut self, cond: Cond, dst: Reg, src: Reg, label: &str) -> &mut Asm {
        self.fixups.push((self.insns.len(), label.to_string()));
        self.push(encode(JMP | cond.op() | SRC_X, dst, src, 0, 0))
    }
    /// Places `label` at the next instruction.
    pub fn label(&mut self, label: &str) -> &mut Asm {
        let prev = self.labels.insert(label.to_string(), self.insns.len());
        assert!(prev.is_none(), "label {label} placed twice");
        self
    }

    /// The instructions with every jump resolved.
    ///
    /// # Panics
    /// On a jump to a label never placed or out of the 16-bit range: both
    /// are mistakes in the program text, found by its unit test.
    pub fn finish(&self) -> Vec<u64> {
        let mut out = self.insns.clone();
        for (at, label) in &self.fixups {
            let at = *at;
            let target = *self
                .labels
                .get(label)
                .unwrap_or_else(|| panic!("jump to unplaced label {label}"));
            let off = i16::try_from(target as i64 - at as i64 - 1).expect("jump in range");
            let mut b = out[at].to_ne_bytes();
            b[2..4].copy_from_slice(&off.to_ne_bytes());
            out[at] = u64::from_ne_bytes(b);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(i: u64) -> [u8; 8] {
        i.to_ne_bytes()
    }

    #[test]
    fn encodings_match_the_kernel_headers() {
        // Checked against clang -target bpf / llvm-objdump output.
        let mut a = Asm::new();
        a.mov(R6, R1) // bf 16 00 00 00 00 00 00
            .load(Size::W, R2, R6, 76) // 61 62 4c 00 00 00 00 00
            .mov_imm(R0, -1) // b7 00 00 00 ff ff ff ff
            .store_imm(Size::DW, FP, -64, 0) // 7a 0a c0 ff 00 00 00 00
            .store(Size::H, FP, -62, R1) // 6b 1a c2 ff 00 00 00 00
            .call(69) // 85 00 00 00 45 00 00 00
            .exit(); // 95 00 ...
        let p = a.finish();
        assert_eq!(bytes(p[0]), [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(p[1]), [0x61, 0x62, 0x4c, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(p[2]), [0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(bytes(p[3]), [0x7a, 0x0a, 0xc0, 0xff, 0, 0, 0, 0]);
        assert_eq!(bytes(p[4]), [0x6b, 0x1a, 0xc2, 0xff, 0, 0, 0, 0]);
        assert_eq!(bytes(p[5]), [0x85, 0, 0, 0, 0x45, 0, 0, 0]);
        assert_eq!(bytes(p[6]), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn alu_byte_swap_and_wide_immediates() {
        // Checked against the instruction-set document's opcode tables.
        let mut a = Asm::new();
        a.or_imm(R4, 0x53) // 47 04 .. 53
            .xor_imm(R0, 0xffff) // a7 00 .. ff ff 00 00
            .rsh_imm(R0, 16) // 77 00 .. 10
            .add(R0, R1) // 0f 10
            .be16(R5) // dc 05 .. 10 00 00 00
            .ld_imm64(R4, 0x0e00_0000_0000_0053); // 18 04 .. 53 / 00 .. 00 00 00 0e
        let p = a.finish();
        assert_eq!(bytes(p[0]), [0x47, 0x04, 0, 0, 0x53, 0, 0, 0]);
        assert_eq!(bytes(p[1]), [0xa7, 0x00, 0, 0, 0xff, 0xff, 0, 0]);
        assert_eq!(bytes(p[2]), [0x77, 0x00, 0, 0, 0x10, 0, 0, 0]);
        assert_eq!(bytes(p[3]), [0x0f, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(p[4]), [0xdc, 0x05, 0, 0, 0x10, 0, 0, 0]);
        assert_eq!(bytes(p[5]), [0x18, 0x04, 0, 0, 0x53, 0, 0, 0]);
        assert_eq!(bytes(p[6]), [0, 0, 0, 0, 0, 0, 0, 0x0e]);
    }

    #[test]
    fn map_loads_and_kfunc_calls() {
        let mut a = Asm::new();
        a.load_map(R1, 7).call_kfunc(1234, 0).call_kfunc(0x12345, 1);
        let p = a.finish();
        assert_eq!(bytes(p[0]), [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(p[1], 0);
        assert_eq!(bytes(p[2]), [0x85, 0x20, 0, 0, 0xd2, 0x04, 0, 0]);
        // A module's kfunc: `off` is its BTF fd's index in fd_array.
        assert_eq!(bytes(p[3]), [0x85, 0x20, 1, 0, 0x45, 0x23, 1, 0]);
    }

    #[test]
    fn jumps_resolve_forward_and_backward() {
        let mut a = Asm::new();
        a.label("top")
            .jmp_imm(Cond::Ne, R2, 8, "out") // 0: +2
            .mov_imm(R0, 1) // 1
            .ja("top") // 2: -3
            .label("out")
            .jmp_reg(Cond::Gt, R4, R3, "out") // 3: -1
            .exit();
        let p = a.finish();
        assert_eq!(bytes(p[0]), [0x55, 0x02, 2, 0, 8, 0, 0, 0]);
        assert_eq!(i16::from_ne_bytes([bytes(p[2])[2], bytes(p[2])[3]]), -3);
        assert_eq!(bytes(p[3])[..2], [0x2d, 0x34]);
        assert_eq!(i16::from_ne_bytes([bytes(p[3])[2], bytes(p[3])[3]]), -1);
    }

    #[test]
    #[should_panic(expected = "unplaced label")]
    fn unplaced_label_is_a_bug() {
        let mut a = Asm::new();
        a.ja("nowhere");
        a.finish();
    }
}
