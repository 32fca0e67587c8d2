//! `diff` compares runs of one program: two reports of different executables would pair
//! unrelated functions by name and exit 0, so they are refused unless `--force`.

use std::path::Path;

use crate::output::{escape::control, report::Report};

#[derive(Debug, thiserror::Error)]
#[error(
    "{base_file} traced {base_exe} but {new_file} traced {new_exe}: reports of different programs (pass --force to compare them anyway)"
)]
pub struct DifferentPrograms {
    pub base_file: String,
    pub base_exe: String,
    pub new_file: String,
    pub new_exe: String,
}

/// The program a report traced, by executable file name: a rebuilt or reinstalled binary (another
/// directory, `(deleted)` after an upgrade under a running process) is still the same program.
/// `None` for bpftrace output, which names no executable.
fn program(r: &Report) -> Option<&str> {
    if r.tool.name == "bpftrace" || r.target.exe.is_empty() {
        return None;
    }
    let exe = r.target.exe.strip_suffix(" (deleted)").unwrap_or(&r.target.exe);
    Path::new(exe).file_name().and_then(|n| n.to_str())
}

/// Refuses two reports of different executables unless `force`.
pub fn check_same_program(
    base: &Report,
    base_file: &str,
    new: &Report,
    new_file: &str,
    force: bool,
) -> Result<(), DifferentPrograms> {
    match (program(base), program(new)) {
        (Some(b), Some(n)) if b != n && !force => Err(DifferentPrograms {
            base_file: control(base_file).into_owned(),
            base_exe: control(&base.target.exe).into_owned(),
            new_file: control(new_file).into_owned(),
            new_exe: control(&new.target.exe).into_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::report::{Target, Tool};

    fn report(exe: &str, tool: &str) -> Report {
        Report {
            tool: Tool { name: tool.into(), version: String::new() },
            target: Target { pid: 1, exe: exe.into(), comm: String::new() },
            ..Report::default()
        }
    }

    #[test]
    fn different_executables_are_refused_unless_forced() {
        let (a, b) = (report("/usr/bin/nginx", "perf-user"), report("/opt/app/target-app", "perf-user"));
        let e = check_same_program(&a, "a.json", &b, "b.json", false).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("--force") && e.contains("nginx")), "{e:?}");
        assert!(check_same_program(&a, "a.json", &b, "b.json", true).is_ok());
    }

    #[test]
    fn a_rebuilt_binary_and_bpftrace_output_are_the_same_program() {
        let a = report("/build/v1/target-app", "perf-user");
        assert!(
            check_same_program(&a, "a", &report("/build/v2/target-app (deleted)", "perf-user"), "b", false).is_ok()
        );
        assert!(check_same_program(&a, "a", &report("bt.json", "bpftrace"), "b", false).is_ok());
    }
}
