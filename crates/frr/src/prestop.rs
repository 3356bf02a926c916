//! What FRR's container runs before it stops (its preStop hook) in ospf
//! mode, so that a restart of ferry's pod is a graceful one.

/// How long the hook waits for the grace-LSAs to be acknowledged, at most,
/// in tenths of a second. Longer than a retransmit interval (1 s) twice.
pub const OSPF_ACK_WAIT_DECISECONDS: u32 = 30;

/// The OSPF preStop script, for `sh -c`, with `vtysh` the command that
/// reaches the node's FRR (`vtysh` in FRR's container).
///
/// It announces the restart in grace-LSAs (`graceful-restart prepare ip
/// ospf`, which also writes `ospfd-gr.json`) and then waits until no
/// neighbor has an LSA left to retransmit, that is, until every neighbor
/// has acknowledged the grace-LSA and so is a helper, as RFC 3623 wants
/// before the restart (at most [`OSPF_ACK_WAIT_DECISECONDS`]). Without
/// the wait, FRR could be gone before a loaded neighbor had read the
/// grace-LSA: that neighbor then saw a plain restart, re-elected the DR
/// and, in one case of five under load, lost every route for the rest of
/// the restart (2026-12-06, `ospf_graceful_restart_of_the_dr_loses_no_ping`).
/// The tools are those of FRR's image (busybox `sh`, `grep`, `sleep`).
pub fn ospf_pre_stop(vtysh: &str) -> String {
    format!(
        "{vtysh} -c 'graceful-restart prepare ip ospf'\n\
         n=0\n\
         while [ $n -lt {OSPF_ACK_WAIT_DECISECONDS} ] && {vtysh} -c 'show ip ospf neighbor json' \
         | grep -qE '\"retransmitCounter\": ?[1-9]'; do sleep 0.1; n=$((n+1)); done\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_then_waits_for_the_acks() {
        let s = ospf_pre_stop("vtysh");
        let prepare = s.find("graceful-restart prepare ip ospf").unwrap();
        let wait = s.find("retransmitCounter").unwrap();
        assert!(prepare < wait, "{s}");
        assert!(s.contains("-lt 30 ]"), "{s}");
    }

    /// The wait ends: with a vtysh that always reports one LSA to
    /// retransmit, after the bound; with one that reports none, at once.
    #[test]
    fn the_wait_is_bounded() {
        let dir = std::env::temp_dir().join(format!("ferry-prestop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, counter, min_ms, max_ms) in [("busy", 1, 2_500, 10_000), ("idle", 0, 0, 1_500)] {
            let fake = dir.join(name);
            std::fs::write(
                &fake,
                format!("#!/bin/sh\necho '{{\"retransmitCounter\":{counter}}}'\n"),
            )
            .unwrap();
            std::process::Command::new("chmod")
                .args(["+x", fake.to_str().unwrap()])
                .status()
                .unwrap();
            let start = std::time::Instant::now();
            let status = std::process::Command::new("sh")
                .args(["-c", &ospf_pre_stop(fake.to_str().unwrap())])
                .status()
                .unwrap();
            let ms = start.elapsed().as_millis();
            assert!(status.success(), "{name}");
            assert!((min_ms..max_ms).contains(&ms), "{name}: {ms} ms");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
