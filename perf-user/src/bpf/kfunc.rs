//! Calls to kernel functions (kfuncs) in the eBPF object. The kernel side declares them as
//! `extern "C"` functions; bpf-linker leaves each call as a BPF-to-BPF call (`src_reg` 1, imm -1)
//! against an undefined symbol, which aya 0.14 cannot resolve. Before the object is handed to aya,
//! each such call becomes what the kernel's verifier expects of a kfunc call: `src_reg`
//! `BPF_PSEUDO_KFUNC_CALL` and, as the immediate, the function's id in the running kernel's BTF.
//! A kfunc this kernel lacks (or declares with another number of parameters) becomes `r0 = 0`
//! instead, so the object still loads; the programs treat a null result as "not available" and
//! the loader does not offer what needs it.

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use crate::bpf::btf;

/// A kfunc the eBPF object may call, and how many parameters our declaration passes.
struct Known {
    name: &'static str,
    params: u32,
}

/// Latency-only mode keeps each call's entry timestamp in the uprobe session's cookie (6.13+).
pub const SESSION_COOKIE: &str = "bpf_session_cookie";

const KNOWN: &[Known] = &[Known { name: SESSION_COOKIE, params: 0 }];

const BPF_JMP_CALL: u8 = 0x85;
const BPF_PSEUDO_CALL: u8 = 1;
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
/// `r0 = 0` (BPF_ALU64 | BPF_MOV | BPF_K).
const MOV64_R0_0: [u8; 8] = [0xb7, 0, 0, 0, 0, 0, 0, 0];

/// Why the object's kfunc calls could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum KfuncError {
    #[error("eBPF object")]
    Object(#[source] object::read::Error),
    #[error("eBPF object calls unknown external function {name:?}")]
    UnknownFunction { name: String },
    #[error("eBPF object: relocation for {name} outside its section")]
    OutsideSection { name: String },
    #[error("eBPF object: relocation outside the file")]
    OutsideFile,
    #[error("eBPF object: the reference to {name} is not a call")]
    NotACall { name: String },
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
}

/// The object with its kfunc calls resolved, 8-byte aligned as ELF parsing wants.
pub struct Resolved {
    words: Vec<u64>,
    len: usize,
    /// The kfuncs that resolved against this kernel.
    pub available: Vec<&'static str>,
}

impl Resolved {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes; u8 has no alignment needs.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    pub fn has(&self, name: &str) -> bool {
        self.available.contains(&name)
    }
}

/// Resolves every kfunc call of `elf` against the kernel BTF `vmlinux`.
pub fn resolve(elf: &[u8], vmlinux: &[u8]) -> Result<Resolved, KfuncError> {
    let mut out = elf.to_vec();
    let mut available = Vec::new();
    let file = object::File::parse(elf).map_err(KfuncError::Object)?;
    for section in file.sections() {
        let Some((section_start, section_len)) = section.file_range() else {
            continue;
        };
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(index) = reloc.target() else {
                continue;
            };
            let Ok(symbol) = file.symbol_by_index(index) else {
                continue;
            };
            if !symbol.is_undefined() {
                continue;
            }
            let name = symbol.name().unwrap_or_default();
            let Some(known) = KNOWN.iter().find(|k| k.name == name) else {
                return Err(KfuncError::UnknownFunction { name: name.to_owned() });
            };
            if offset + 8 > section_len {
                return Err(KfuncError::OutsideSection { name: name.to_owned() });
            }
            let at = (section_start + offset) as usize;
            let insn = out.get_mut(at..at + 8).ok_or(KfuncError::OutsideFile)?;
            if insn[0] != BPF_JMP_CALL || insn[1] >> 4 != BPF_PSEUDO_CALL {
                return Err(KfuncError::NotACall { name: name.to_owned() });
            }
            match btf::func_id(vmlinux, name)? {
                Some((id, params)) if params == known.params => {
                    insn[1] = BPF_PSEUDO_KFUNC_CALL << 4;
                    insn[2..4].copy_from_slice(&0u16.to_le_bytes());
                    insn[4..8].copy_from_slice(&id.to_le_bytes());
                    if !available.contains(&known.name) {
                        available.push(known.name);
                    }
                }
                _ => insn.copy_from_slice(&MOV64_R0_0),
            }
        }
    }
    let len = out.len();
    let mut words = vec![0u64; len.div_ceil(8)];
    // SAFETY: `words` has room for `len` bytes; the regions do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), words.as_mut_ptr().cast::<u8>(), len) };
    Ok(Resolved { words, len, available })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instructions (8 bytes each) that call `name` in `elf`, as found through its relocations.
    fn calls_to(elf: &[u8], name: &str) -> Vec<[u8; 8]> {
        let file = object::File::parse(elf).unwrap();
        let mut out = Vec::new();
        for section in file.sections() {
            let Some((start, _)) = section.file_range() else { continue };
            for (offset, reloc) in section.relocations() {
                let RelocationTarget::Symbol(i) = reloc.target() else { continue };
                if file.symbol_by_index(i).unwrap().name().unwrap() == name {
                    let at = (start + offset) as usize;
                    out.push(elf[at..at + 8].try_into().unwrap());
                }
            }
        }
        out
    }

    /// A BTF blob with no types: a kernel without any kfunc.
    fn empty_btf() -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for v in [24u32, 0, 0, 0, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(0);
        b
    }

    #[test]
    fn a_broken_object_is_a_typed_error() {
        assert!(matches!(resolve(b"not an ELF file", &empty_btf()), Err(KfuncError::Object(_))));
    }

    #[test]
    fn session_cookie_calls_become_kfunc_calls_or_a_null_result() {
        let elf = crate::bpf::loader::EBPF_OBJECT;
        let before = calls_to(elf, SESSION_COOKIE);
        assert!(!before.is_empty(), "the object calls {SESSION_COOKIE}");
        assert!(before.iter().all(|i| i[0] == BPF_JMP_CALL && i[1] >> 4 == BPF_PSEUDO_CALL));

        // A kernel without it: the call becomes `r0 = 0`, which the program reads as "no cookie".
        let none = resolve(elf, &empty_btf()).unwrap();
        assert!(!none.has(SESSION_COOKIE));
        assert!(calls_to(none.bytes(), SESSION_COOKIE).iter().all(|i| *i == MOV64_R0_0));
        assert_eq!(none.bytes().len(), elf.len());
        assert_eq!(none.bytes().as_ptr() as usize % 8, 0, "ELF parsing wants aligned bytes");

        // The running kernel's BTF (6.13+ has it): a kfunc call to its BTF id.
        let Some(vmlinux) = btf::test_vmlinux() else { return };
        let Some((id, 0)) = btf::func_id(&vmlinux, SESSION_COOKIE).unwrap() else {
            eprintln!("this kernel has no {SESSION_COOKIE}(void)");
            return;
        };
        let real = resolve(elf, &vmlinux).unwrap();
        assert!(real.has(SESSION_COOKIE));
        for insn in calls_to(real.bytes(), SESSION_COOKIE) {
            assert_eq!((insn[0], insn[1] >> 4, u16::from_le_bytes([insn[2], insn[3]])), (BPF_JMP_CALL, 2, 0));
            assert_eq!(u32::from_le_bytes(insn[4..8].try_into().unwrap()), id);
        }
    }
}
