//! Reads member offsets of kernel structs from the running kernel's BTF (`/sys/kernel/btf/vmlinux`),
//! so the scheduler program can find `pid`/`tgid` of the incoming task on any kernel build.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read {path} (perf-user needs a kernel with BTF, CONFIG_DEBUG_INFO_BTF=y)")]
    Read { path: String, source: std::io::Error },
    #[error("kernel BTF is malformed: {0}")]
    Malformed(&'static str),
    #[error("kernel BTF has no member {member} in struct {strukt}")]
    NoMember { strukt: String, member: String },
}

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The BTF blob at `path` (read once per load: struct offsets and kfunc ids both come from it).
pub fn read(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })
}

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

fn u32_at(d: &[u8], off: usize) -> Result<u32, BtfError> {
    d.get(off..off + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).ok_or(BtfError::Malformed("truncated"))
}

fn name_at(strings: &[u8], off: u32) -> &[u8] {
    let s = strings.get(off as usize..).unwrap_or(&[]);
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

/// One BTF type as the walk sees it.
struct Type<'a> {
    kind: u32,
    name: &'a [u8],
    vlen: usize,
    kflag: bool,
    /// The header's size-or-type word (a FUNC's prototype id).
    size_or_type: u32,
    /// What follows the 12-byte header (members, parameters, ...).
    body: &'a [u8],
    /// The string section, for member names.
    strings: &'a [u8],
}

/// Calls `visit` on every type in id order (ids start at 1) until it returns `Some`.
fn walk<'a, T>(data: &'a [u8], mut visit: impl FnMut(u32, &Type<'a>) -> Option<T>) -> Result<Option<T>, BtfError> {
    if data.get(0..2) != Some(&BTF_MAGIC.to_le_bytes()) {
        return Err(BtfError::Malformed("bad magic (big-endian or not BTF)"));
    }
    let hdr_len = u32_at(data, 4)? as usize;
    let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
    let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
    let types = data
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or(BtfError::Malformed("type section out of bounds"))?;
    let strings = data
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or(BtfError::Malformed("string section out of bounds"))?;
    let mut pos = 0;
    let mut id = 1;
    while pos + 12 <= types.len() {
        let info = u32_at(types, pos + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let extra = match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
            KIND_ARRAY => 12,
            KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
            KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
            _ => 0,
        };
        let body = types.get(pos + 12..pos + 12 + extra).ok_or(BtfError::Malformed("truncated type"))?;
        let ty = Type {
            kind,
            name: name_at(strings, u32_at(types, pos)?),
            vlen,
            kflag: info >> 31 == 1,
            size_or_type: u32_at(types, pos + 8)?,
            body,
            strings,
        };
        if let Some(found) = visit(id, &ty) {
            return Ok(Some(found));
        }
        pos += 12 + extra;
        id += 1;
    }
    Ok(None)
}

pub fn parse_member_offsets(data: &[u8], strukt: &str, members: &[&str]) -> Result<Vec<u32>, BtfError> {
    let found = walk(data, |_, ty| {
        (ty.kind == KIND_STRUCT && ty.name == strukt.as_bytes()).then(|| {
            let mut found = vec![None; members.len()];
            for m in 0..ty.vlen {
                let at = m * 12;
                let m_name = name_at(ty.strings, u32_at(ty.body, at)?);
                let raw = u32_at(ty.body, at + 8)?;
                let bits = if ty.kflag { raw & 0x00ff_ffff } else { raw };
                if let Some(i) = members.iter().position(|want| want.as_bytes() == m_name) {
                    found[i] = Some(bits / 8);
                }
            }
            Ok(found)
        })
    })?;
    let Some(found) = found else {
        return Err(BtfError::NoMember { strukt: strukt.into(), member: "(struct not found)".into() });
    };
    found?
        .into_iter()
        .zip(members)
        .map(|(o, m)| o.ok_or_else(|| BtfError::NoMember { strukt: strukt.into(), member: (*m).into() }))
        .collect()
}

/// The id of function `name` in `data` and its prototype's parameter count; `None` when there is
/// no such function (a kernel without that kfunc).
/// The id of the global variable `name` (BTF `VAR`), and the id of its type.
pub fn var_id(data: &[u8], name: &str) -> Result<Option<(u32, u32)>, BtfError> {
    walk(data, |id, ty| (ty.kind == KIND_VAR && ty.name == name.as_bytes()).then_some((id, ty.size_or_type)))
}

/// The offset of the global variable `name` in its BTF `DATASEC` (for a per-CPU variable, in
/// the per-CPU section).
pub fn var_section_offset(data: &[u8], name: &str) -> Result<Option<u32>, BtfError> {
    let Some(var) = walk(data, |id, ty| (ty.kind == KIND_VAR && ty.name == name.as_bytes()).then_some(id))? else {
        return Ok(None);
    };
    walk(data, |_, ty| {
        if ty.kind != KIND_DATASEC {
            return None;
        }
        (0..ty.vlen).find_map(|i| {
            let at = i * 12;
            (u32_at(ty.body, at).ok()? == var).then(|| u32_at(ty.body, at + 4).ok()).flatten()
        })
    })
}

pub fn func_id(data: &[u8], name: &str) -> Result<Option<(u32, u32)>, BtfError> {
    let mut protos: Vec<(u32, u32)> = Vec::new();
    let func = walk(data, |id, ty| {
        if ty.kind == KIND_FUNC_PROTO {
            protos.push((id, ty.vlen as u32));
        }
        (ty.kind == KIND_FUNC && ty.name == name.as_bytes()).then_some((id, ty.size_or_type))
    })?;
    let Some((id, proto)) = func else {
        return Ok(None);
    };
    // Prototypes usually come first; a later one is found by walking on.
    let params = match protos.iter().find(|(p, _)| *p == proto) {
        Some(&(_, vlen)) => vlen,
        None => walk(data, |pid, ty| (pid == proto && ty.kind == KIND_FUNC_PROTO).then_some(ty.vlen as u32))?
            .ok_or(BtfError::Malformed("function without a prototype"))?,
    };
    Ok(Some((id, params)))
}

/// The running kernel's BTF for tests; `None` (skip, said on stderr) only outside CI.
#[cfg(test)]
pub(crate) fn test_vmlinux() -> Option<Vec<u8>> {
    match std::fs::read(VMLINUX) {
        Ok(data) => Some(data),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI must have kernel BTF at {VMLINUX}: {e}");
            eprintln!("skipping: no {VMLINUX} ({e})");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_task_struct_pid_and_tgid_in_the_running_kernel() {
        let Some(data) = test_vmlinux() else { return };
        let offs = parse_member_offsets(&data, "task_struct", &["pid", "tgid"]).unwrap_or_else(|e| panic!("{e}"));
        // pid_t pid; pid_t tgid; are adjacent 4-byte members.
        assert_eq!(offs[1], offs[0] + 4, "{offs:?}");
        assert!(offs[0] > 0 && offs[0] < 16384);
    }

    #[test]
    fn finds_a_kfunc_and_its_parameter_count() {
        let Some(data) = test_vmlinux() else { return };
        // A kernel function every BTF kernel has, with two parameters.
        let (id, params) = func_id(&data, "vfs_fsync").unwrap().expect("vfs_fsync in BTF");
        assert!(id > 0);
        assert_eq!(params, 2);
        assert_eq!(func_id(&data, "no_such_function_here").unwrap(), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_member_offsets(b"nope", "task_struct", &["pid"]).is_err());
        assert!(parse_member_offsets(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0], "x", &["y"]).is_err());
    }
}
