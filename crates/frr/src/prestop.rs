//! What FRR's container runs before it stops (its preStop hook) in ospf
//! mode, so that a restart of ferry's pod is a graceful one.

/// How long the hook waits for the grace-LSAs to be acknowledged, at most,
/// in tenths of a second. Longer than a retransmit interval (1 s) twice.
pub const OSPF_ACK_WAIT_DECISECONDS: u32 = 30;

/// The file, in FRR's run directory, where the preStop hook leaves the
/// last second the old ospfd's MD5 sequence number may have reached: a
/// new ospfd whose packets carry that number or less is refused.
pub const OSPF_SEQ_FLOOR_FILE: &str = "ospfd-seq-floor";

/// Where the preStop hook has ospfd log one hello, to read its number.
const OSPF_SEQ_LOG: &str = "ospfd-seq.log";

/// How long the hook waits for ospfd's next hello, at most, in tenths of
/// a second (hellos go every 2 s).
pub const OSPF_HELLO_WAIT_DECISECONDS: u32 = 30;

/// How long a new FRR waits for [`OSPF_SEQ_FLOOR_FILE`]'s second, at
/// most, in tenths of a second: well inside the 120 s grace period.
pub const OSPF_START_WAIT_DECISECONDS: u32 = 600;

/// Added to the sampled number: packets the old ospfd still sends
/// between the sample and its end, its shutdown included. With 3, the
/// helpers still refused 4-5 s of a new ospfd's packets in 2 of 60
/// restarts (2026-12-07).
const OSPF_SEQ_MARGIN: u32 = 10;

/// The OSPF preStop script, for `sh -c`, with `vtysh` the command that
/// reaches the node's FRR (`vtysh` in FRR's container) and `run_dir`
/// FRR's run directory (kept on the node across the restart).
///
/// 1. It announces the restart in grace-LSAs (`graceful-restart prepare
///    ip ospf`, which also writes `ospfd-gr.json`) and then waits until no
///    neighbor has an LSA left to retransmit, that is, until every
///    neighbor has acknowledged the grace-LSA and so is a helper, as RFC
///    3623 wants before the restart (at most
///    [`OSPF_ACK_WAIT_DECISECONDS`]). Without the wait, FRR could be gone
///    before a loaded neighbor had read the grace-LSA: that neighbor then
///    saw a plain restart and, in one case of five under load, lost every
///    route for the rest of the restart (2026-12-06, a broadcast network).
/// 2. With MD5, every packet carries a sequence number, `max(now in
///    seconds, last + 1)`, and the neighbors refuse any number below the
///    last they took from this router, even from a new ospfd, which
///    starts again from the clock. Each burst (a database exchange, a
///    flood) puts the number ahead of the clock: 4–11 s at the restarts of
///    a rolling upgrade (2026-12-07). For that long the helpers refused
///    the new ospfd's packets ("bad sequence"), and its restart ended late
///    and out of step with them (adjacencies reset by SeqNumberMismatch,
///    pings lost). So the hook has ospfd log its next hello (`debug ospf
///    packet hello send detail`, at most [`OSPF_HELLO_WAIT_DECISECONDS`])
///    and leaves that hello's number, plus a margin, in
///    [`OSPF_SEQ_FLOOR_FILE`], which [`ospf_start_wait`] waits out before
///    the new FRR starts. Without MD5 no number is logged and no file
///    written.
///
/// The tools are those of FRR's image (busybox `sh`, `grep`, `sed`,
/// `tail`, `sleep`, `mv`).
pub fn ospf_pre_stop(vtysh: &str, run_dir: &str) -> String {
    let log = format!("{run_dir}/{OSPF_SEQ_LOG}");
    let floor = format!("{run_dir}/{OSPF_SEQ_FLOOR_FILE}");
    format!(
        "{vtysh} -c 'graceful-restart prepare ip ospf'\n\
         n=0\n\
         while [ $n -lt {OSPF_ACK_WAIT_DECISECONDS} ] && {vtysh} -c 'show ip ospf neighbor json' \
         | grep -qE '\"retransmitCounter\": ?[1-9]'; do sleep 0.1; n=$((n+1)); done\n\
         rm -f {log}\n\
         {vtysh} -d ospfd -c 'configure terminal' -c 'log file {log} debugging' \
         -c 'debug ospf packet hello send detail' >/dev/null\n\
         n=0\n\
         while [ $n -lt {OSPF_HELLO_WAIT_DECISECONDS} ] && ! grep -q 'Hello sent to' {log} 2>/dev/null; \
         do sleep 0.1; n=$((n+1)); done\n\
         s=$(grep 'Sequence number' {log} 2>/dev/null | tail -n 1 | sed 's/.* //')\n\
         case \"$s\" in ''|*[!0-9]*) ;; *) echo $((s + {OSPF_SEQ_MARGIN})) > {floor}.tmp \
         && mv {floor}.tmp {floor};; esac\n"
    )
}

/// What a new FRR runs before it starts, for `sh -c`: waits (at most
/// [`OSPF_START_WAIT_DECISECONDS`]) until the clock has passed the second
/// [`ospf_pre_stop`] left in `run_dir`, so that the new ospfd's first
/// packets already carry a number the helpers take, then removes the
/// file and the hook's log. Nothing to wait for without the file.
pub fn ospf_start_wait(run_dir: &str) -> String {
    let floor = format!("{run_dir}/{OSPF_SEQ_FLOOR_FILE}");
    let log = format!("{run_dir}/{OSPF_SEQ_LOG}");
    format!(
        "if [ -f {floor} ]; then t=$(cat {floor}); case \"$t\" in ''|*[!0-9]*) t=0;; esac; n=0; \
         while [ \"$(date +%s)\" -le \"$t\" ] && [ $n -lt {OSPF_START_WAIT_DECISECONDS} ]; \
         do sleep 0.1; n=$((n+1)); done; fi; rm -f {floor} {log}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferry-prestop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A fake `vtysh`: reports `counter` LSAs to retransmit, and when told
    /// to debug hellos, logs one hello (with `seq` as its MD5 number, if
    /// any) where the hook reads it.
    fn fake_vtysh(dir: &Path, counter: u32, seq: Option<u64>) -> String {
        let log = dir.join(OSPF_SEQ_LOG);
        let number = seq
            .map(|n| {
                format!(
                    "echo 'OSPF: [JZ35B-8875A]   Sequence number {n}' >> {}\n",
                    log.display()
                )
            })
            .unwrap_or_default();
        let fake = dir.join("vtysh");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\ncase \"$*\" in *'debug ospf packet'*)\n{number}echo 'OSPF: [GP5SX-XSB6D] Hello sent to [224.0.0.5] via [eth0:10.0.0.1].' >> {}\n;;\n\
                 *) echo '{{\"retransmitCounter\":{counter}}}';; esac\n",
                log.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", fake.to_str().unwrap()])
            .status()
            .unwrap();
        fake.display().to_string()
    }

    fn run(script: &str) -> Duration {
        let start = Instant::now();
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
        start.elapsed()
    }

    #[test]
    fn announces_waits_for_the_acks_then_samples_a_hello() {
        let s = ospf_pre_stop("vtysh", "/var/run/frr");
        let prepare = s.find("graceful-restart prepare ip ospf").unwrap();
        let wait = s.find("retransmitCounter").unwrap();
        let sample = s.find("debug ospf packet hello send detail").unwrap();
        assert!(prepare < wait && wait < sample, "{s}");
        assert!(s.contains("-lt 30 ]"), "{s}");
        assert!(s.contains("> /var/run/frr/ospfd-seq-floor.tmp"), "{s}");
    }

    /// The waits end: with a vtysh that always reports an LSA to
    /// retransmit and never logs a hello, after both bounds; with one
    /// that reports none and logs a hello, at once.
    #[test]
    fn the_waits_are_bounded() {
        let dir = scratch("bounded");
        let d = dir.display().to_string();
        let busy = fake_vtysh(&dir, 1, None);
        // The busy fake logs no hello: make it not log at all.
        std::fs::write(&busy, "#!/bin/sh\necho '{\"retransmitCounter\":1}'\n").unwrap();
        let took = run(&ospf_pre_stop(&busy, &d));
        assert!(
            (Duration::from_millis(5_500)..Duration::from_secs(15)).contains(&took),
            "busy: {took:?}"
        );
        assert!(!dir.join(OSPF_SEQ_FLOOR_FILE).exists());
        let idle = fake_vtysh(&dir, 0, Some(now() + 7));
        let took = run(&ospf_pre_stop(&idle, &d));
        assert!(took < Duration::from_millis(1_500), "idle: {took:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The floor is the hello's number plus the margin; without MD5 (no
    /// number in the hello) there is none.
    #[test]
    fn leaves_the_sequence_floor_only_with_md5() {
        let dir = scratch("floor");
        let d = dir.display().to_string();
        let seq = now() + 9;
        run(&ospf_pre_stop(&fake_vtysh(&dir, 0, Some(seq)), &d));
        let floor = std::fs::read_to_string(dir.join(OSPF_SEQ_FLOOR_FILE)).unwrap();
        assert_eq!(floor.trim(), (seq + u64::from(OSPF_SEQ_MARGIN)).to_string());
        std::fs::remove_file(dir.join(OSPF_SEQ_FLOOR_FILE)).unwrap();
        run(&ospf_pre_stop(&fake_vtysh(&dir, 0, None), &d));
        assert!(!dir.join(OSPF_SEQ_FLOOR_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A new FRR waits until the clock is past the floor, then removes it;
    /// a floor in the past, a bad one or none costs nothing.
    #[test]
    fn start_waits_out_the_floor() {
        let dir = scratch("start");
        let d = dir.display().to_string();
        let file = dir.join(OSPF_SEQ_FLOOR_FILE);
        std::fs::write(&file, format!("{}\n", now() + 1)).unwrap();
        let took = run(&ospf_start_wait(&d));
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(4)).contains(&took),
            "{took:?}"
        );
        assert!(!file.exists());
        for content in [format!("{}", now() - 10), "garbage".into()] {
            std::fs::write(&file, content).unwrap();
            assert!(run(&ospf_start_wait(&d)) < Duration::from_millis(500));
            assert!(!file.exists());
        }
        assert!(run(&ospf_start_wait(&d)) < Duration::from_millis(500));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
