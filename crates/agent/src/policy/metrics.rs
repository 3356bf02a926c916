//! The policy series of `/metrics`.

use std::fmt::Write;
use std::time::Duration;

use super::dataplane::Applied;
use super::engine::counter_policy;
use super::PolicyState;

/// Syncs by result, and their time.
#[derive(Debug, Default, Clone)]
pub struct Applies {
    pub unchanged: u64,
    pub adopted: u64,
    pub elements: u64,
    pub replaced: u64,
    pub errors: u64,
    pub seconds_sum: f64,
    pub count: u64,
}

impl Applies {
    pub fn observe(&mut self, result: Result<Option<Applied>, ()>, took: Duration) {
        match result {
            Ok(None) => self.adopted += 1,
            Ok(Some(Applied::Unchanged)) => self.unchanged += 1,
            Ok(Some(Applied::Elements { .. })) => self.elements += 1,
            Ok(Some(Applied::Replaced)) => self.replaced += 1,
            Err(()) => self.errors += 1,
        }
        self.count += 1;
        self.seconds_sum += took.as_secs_f64();
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends the policy series to `out`.
pub fn render(s: &PolicyState, out: &mut String) {
    head(
        out,
        "ferry_network_policies",
        "gauge",
        "NetworkPolicies by whether ferryd enforces them as written (unenforceable: parts left out fail closed).",
    );
    let _ = writeln!(
        out,
        "ferry_network_policies{{state=\"enforced\"}} {}",
        s.enforced
    );
    let _ = writeln!(
        out,
        "ferry_network_policies{{state=\"unenforceable\"}} {}",
        s.unenforceable
    );
    head(
        out,
        "ferry_network_policy_drops_total",
        "counter",
        "Packets dropped for lack of an allowing rule, per policy isolating the pod (kept across table replaces).",
    );
    for (name, (packets, _)) in &s.drops {
        if let Some((dir, ns, policy)) = counter_policy(name) {
            let _ = writeln!(
                out,
                "ferry_network_policy_drops_total{{namespace=\"{ns}\",policy=\"{policy}\",direction=\"{dir}\"}} {packets}"
            );
        }
    }
    let a = &s.applies;
    let name = "ferry_network_policy_applies_total";
    let _ = writeln!(
        out,
        "# HELP {name} Policy syncs by result (adopted: the table a restart found was current).\n# TYPE {name} counter"
    );
    for (result, v) in [
        ("unchanged", a.unchanged),
        ("adopted", a.adopted),
        ("elements", a.elements),
        ("replaced", a.replaced),
        ("error", a.errors),
    ] {
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {v}");
    }
    let name = "ferry_network_policy_apply_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time a policy sync took (compile and apply).\n# TYPE {name} summary\n{name}_sum {}\n{name}_count {}",
        a.seconds_sum, a.count
    );
    if let Some(c) = &s.drop_log {
        drop_log_series(c, out);
    }
    let name = "ferry_network_policy_isolated_pods";
    let _ = writeln!(
        out,
        "# HELP {name} Local pod addresses isolated by a policy, per direction.\n# TYPE {name} gauge"
    );
    for (dir, addrs) in &s.isolated {
        let d = format!("{dir:?}").to_lowercase();
        let _ = writeln!(out, "{name}{{direction=\"{d}\"}} {}", addrs.len());
    }
}

/// `--policy-log`'s series.
fn drop_log_series(c: &super::drop_log::DropLogCounts, out: &mut String) {
    for (name, help, v) in [
        (
            "ferry_policy_drop_log_lines_total",
            "Dropped packets logged (--policy-log), one line each.",
            c.lines,
        ),
        (
            "ferry_policy_drop_log_lost_total",
            "Drop log messages the kernel could not deliver (NFLOG sequence gaps; not those the log rule's rate limit held back).",
            c.lost,
        ),
        (
            "ferry_policy_drop_log_overruns_total",
            "Times the drop log socket's buffer overflowed (ENOBUFS).",
            c.overruns,
        ),
    ] {
        head(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series() {
        let mut s = PolicyState {
            enforced: 2,
            unenforceable: 1,
            ..Default::default()
        };
        s.drops.insert("in/default/deny".into(), (7, 420));
        s.drops.insert("eg/prod/web".into(), (1, 60));
        s.applies
            .observe(Ok(Some(Applied::Replaced)), Duration::from_millis(3));
        s.applies.observe(Err(()), Duration::from_millis(1));
        let mut out = String::new();
        render(&s, &mut out);
        assert!(out.contains("ferry_network_policies{state=\"unenforceable\"} 1\n"));
        assert!(out.contains(
            "ferry_network_policy_drops_total{namespace=\"default\",policy=\"deny\",direction=\"ingress\"} 7\n"
        ));
        assert!(out.contains(
            "ferry_network_policy_drops_total{namespace=\"prod\",policy=\"web\",direction=\"egress\"} 1\n"
        ));
        assert!(out.contains("ferry_network_policy_applies_total{result=\"replaced\"} 1\n"));
        assert!(out.contains("ferry_network_policy_applies_total{result=\"error\"} 1\n"));
        assert!(out.contains("ferry_network_policy_apply_duration_seconds_count 2\n"));
        assert!(!out.contains("drop_log"), "no drop log series with it off");
        s.drop_log = Some(crate::policy::drop_log::DropLogCounts {
            lines: 3,
            lost: 1,
            overruns: 0,
        });
        let mut out = String::new();
        render(&s, &mut out);
        assert!(out.contains("ferry_policy_drop_log_lines_total 3\n"));
        assert!(out.contains("ferry_policy_drop_log_lost_total 1\n"));
        assert!(out.contains("ferry_policy_drop_log_overruns_total 0\n"));
    }
}
