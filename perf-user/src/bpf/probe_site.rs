//! What the kernel does at a probe site: x86-64 uprobes emulate a few first instructions (push of
//! a register, nops, relative jumps and calls) and single-step every other one out of line, which
//! costs about ten times as much per hit. Decoded with iced-x86.

use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, Mnemonic, OpKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSite {
    /// The first instruction in Intel syntax, e.g. `push rbp`.
    pub insn: String,
    /// True when the kernel single-steps it on every hit.
    pub single_step: bool,
}

/// Classifies the instruction at the start of `code` (the function's first bytes).
pub fn classify(code: &[u8], address: u64) -> ProbeSite {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    if !decoder.can_decode() {
        return ProbeSite { insn: "(no code)".into(), single_step: true };
    }
    decoder.decode_out(&mut insn);
    if insn.is_invalid() {
        return ProbeSite { insn: "(invalid)".into(), single_step: true };
    }
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    ProbeSite { insn: text, single_step: !emulated(&insn) }
}

/// Mirrors arch/x86/kernel/uprobes.c: branch_setup_xol_ops (jmp/call/jcc rel), push_setup_xol_ops
/// (push of a general register) and the nop emulation of recent kernels.
fn emulated(insn: &Instruction) -> bool {
    match insn.mnemonic() {
        Mnemonic::Push => insn.op0_kind() == OpKind::Register,
        Mnemonic::Nop => true,
        Mnemonic::Jcxz | Mnemonic::Jecxz | Mnemonic::Jrcxz => false,
        m => {
            // jmp, call and every jcc with a relative target.
            let relative =
                matches!(insn.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64);
            relative && (m == Mnemonic::Call || format!("{m:?}").starts_with('J'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_rbp_and_nops_are_emulated() {
        assert_eq!(
            classify(&[0x55, 0x48, 0x89, 0xe5], 0x1000),
            ProbeSite { insn: "push rbp".into(), single_step: false }
        );
        assert!(!classify(&[0x41, 0x57], 0).single_step, "push r15");
        assert!(!classify(&[0x0f, 0x1f, 0x44, 0x00, 0x00], 0).single_step, "5-byte nop");
        assert!(!classify(&[0xe9, 0, 0, 0, 0], 0).single_step, "jmp rel32");
    }

    #[test]
    fn other_first_instructions_are_single_stepped() {
        let sub = classify(&[0x48, 0x83, 0xec, 0x28], 0);
        assert_eq!(sub.insn, "sub rsp,28h");
        assert!(sub.single_step);
        assert!(classify(&[0xf3, 0x0f, 0x1e, 0xfa], 0).single_step, "endbr64");
        assert!(classify(&[], 0).single_step);
    }
}
