//! How a goal is judged and worded: a status from measured values (or from their 95 % intervals),
//! and the `measured` text that shows each value, or why it is missing.

use super::{
    stats::{Cell, RatioCi},
    text::ci_text,
};

#[derive(Debug, PartialEq)]
pub enum Status {
    Met,
    NotMet,
    /// The 95 % interval straddles the goal: these runs cannot tell.
    Inconclusive,
    NotMeasured(String),
    /// A goal that sets no limit, only asks for the number: measured and shown.
    Stated,
}

#[derive(Debug)]
pub struct Goal {
    pub goal: &'static str,
    pub measured: String,
    pub status: Status,
}

/// `name: value; name: value` with each value as `fmt` writes it, or its error.
pub fn measured_text<T>(values: &[(String, Result<T, String>)], fmt: impl Fn(&T) -> String) -> String {
    values
        .iter()
        .map(|(name, v)| match v {
            Ok(x) => format!("{name}: {}", fmt(x)),
            Err(e) => format!("{name}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `name value, name value`: a goal's side figures, each as `fmt` writes it, or its error.
pub fn list_text<T>(values: &[(String, Result<T, String>)], fmt: impl Fn(&T) -> String) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|(name, v)| match v {
            Ok(x) => format!("{name} {}", fmt(x)),
            Err(e) => format!("{name} {e}"),
        })
        .collect();
    parts.join(", ")
}

/// The values of a goal, or the first reason one is missing (which makes the goal unmeasured).
fn all_measured<T: Copy>(values: &[(String, Result<T, String>)]) -> Result<Vec<T>, Status> {
    values.iter().map(|(_, v)| v.as_ref().copied().map_err(|e| Status::NotMeasured(e.clone()))).collect()
}

/// Every measured value must pass `ok`; any missing one makes the goal unmeasured.
pub fn judge(values: &[(String, Cell)], fmt: impl Fn(f64) -> String, ok: impl Fn(f64) -> bool) -> (String, Status) {
    let measured = measured_text(values, |x| fmt(*x));
    let status = match all_measured(values) {
        Ok(xs) if xs.iter().all(|x| ok(*x)) => Status::Met,
        Ok(_) => Status::NotMet,
        Err(status) => status,
    };
    (measured, status)
}

/// A ratio goal (`≤ limit`) judged on each function's interval: met when every interval lies
/// within the limit, not met when one lies wholly beyond it, inconclusive otherwise (the runs
/// cannot tell; more repetitions or a quieter machine can).
pub fn judge_ci(values: &[(String, Result<RatioCi, String>)], of: &str, limit: f64) -> (String, Status) {
    judge_interval(values, |ci| format!("{} {of}", ci_text(ci)), limit)
}

/// The same for any estimate with its interval (a ratio, a difference), written by `fmt`.
pub fn judge_interval(
    values: &[(String, Result<RatioCi, String>)],
    fmt: impl Fn(&RatioCi) -> String,
    limit: f64,
) -> (String, Status) {
    let measured = measured_text(values, fmt);
    if values.is_empty() {
        return ("nothing measured".into(), Status::NotMeasured("no function measured".into()));
    }
    let status = match all_measured(values) {
        Ok(cis) if cis.iter().all(|ci| ci.hi <= limit) => Status::Met,
        Ok(cis) if cis.iter().any(|ci| ci.lo > limit) => Status::NotMet,
        Ok(_) => Status::Inconclusive,
        Err(status) => status,
    };
    (measured, status)
}
