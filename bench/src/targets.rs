//! The goals of issue 7, checked against one run's numbers.

use serde::Serialize;

use crate::stats::Summary;

#[derive(Debug, Serialize)]
pub struct Target {
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

/// Finds the median of `case` for `system` among `rows`.
pub fn median(rows: &[Summary], case: &str, system: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.case == case && r.system == system)
        .map(|r| r.median_ms)
}

fn ratio_target(rows: &[Summary], case: &str, other: &str, limit: f64, out: &mut Vec<Target>) {
    let (Some(m), Some(o)) = (median(rows, case, "mydocker"), median(rows, case, other)) else {
        return;
    };
    out.push(Target {
        goal: format!("{case}: mydocker ≤ {limit}× {other}"),
        measured: format!("{m:.2} ms vs {o:.2} ms = {:.2}×", m / o),
        met: m <= limit * o,
    });
}

/// Connect/disconnect ratios against the floor and the peers, and the
/// scale goal; the in-process goals are added by the caller.
pub fn network_targets(rows: &[Summary], peers: &[&str]) -> Vec<Target> {
    let mut out = Vec::new();
    for case in ["connect", "connect +2 ports"] {
        for &peer in peers {
            ratio_target(rows, case, peer, 0.5, &mut out);
        }
        ratio_target(rows, case, "floor", 1.5, &mut out);
    }
    for case in ["disconnect", "disconnect +2 ports"] {
        for &peer in peers {
            ratio_target(rows, case, peer, 1.0, &mut out);
        }
    }
    out
}

/// A measured value against an upper bound.
pub fn at_most(goal: &str, value: f64, limit: f64, unit: &str) -> Target {
    Target {
        goal: goal.to_string(),
        measured: format!("{value:.3} {unit} (limit {limit} {unit})"),
        met: value <= limit,
    }
}
