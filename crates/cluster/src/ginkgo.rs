//! How [`crate::conformance`] starts e2e.test and follows it:
//!
//! - **One node**: e2e.test itself, with its `--ginkgo.*` flags.
//! - **N nodes** (`--parallel N`): the cached ginkgo v1 runner,
//!   `ginkgo -nodes=N -noColor e2e.test -- ARGS`; it starts N e2e.test
//!   processes that take cases one at a time from its counter, prints
//!   the aggregated summary (`Ran N of M Specs …`) and exits non-zero on
//!   any failure. Cases tagged `[Serial]` cannot share the cluster with
//!   others, so a parallel run skips them ([`SERIAL`]).
//! - **Reports**: every node writes `junit_<node>.xml` (`junit_01.xml`,
//!   `junit_02.xml`, …); each case is in exactly one of them.
//! - **Progress**: e2e's reporter prints a JSON line after every case
//!   (`{"msg":"PASSED …","completed":3,"total":40,…}`); in a parallel run
//!   `completed` counts that node's cases and `total` is -1, so the
//!   progress shown is the run's own count.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{ClusterError, Result};
use crate::junit::{self, Case};

/// What a parallel run skips on top of the suite's skips.
pub const SERIAL: &str = r"\[Serial\]";

/// The command line after the program: e2e.test's `args` for one node,
/// else ginkgo's flags, e2e.test and `args` after `--`. The first
/// element is the program.
pub fn command_line(e2e: &Path, ginkgo: &Path, nodes: u32, args: &[String]) -> Vec<String> {
    let mut out = if nodes > 1 {
        vec![
            ginkgo.display().to_string(),
            format!("-nodes={nodes}"),
            "-noColor".into(),
            e2e.display().to_string(),
            "--".into(),
        ]
    } else {
        vec![e2e.display().to_string()]
    };
    out.extend(args.iter().cloned());
    out
}

/// The JUnit reports in `dir` (`junit_*.xml`), sorted.
pub fn reports(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("junit_") && n.ends_with(".xml"))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Removes the reports an earlier run left in `dir` (a reused `--out`),
/// so that only this run's cases are read.
pub fn clear_reports(dir: &Path) -> Result<()> {
    for p in reports(dir) {
        std::fs::remove_file(&p).map_err(ClusterError::io("removing", &p))?;
    }
    Ok(())
}

/// Every case of every node's report in `dir`.
pub fn cases(dir: &Path) -> Vec<Case> {
    reports(dir)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|x| junit::cases(&x))
        .collect()
}

/// One of e2e's JSON progress lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `PASSED name` or `FAILED name`.
    pub msg: String,
    /// Cases this node completed.
    pub completed: i64,
    /// Cases this node will run; -1 in a parallel run.
    pub total: i64,
}

/// The PASSED/FAILED progress line of one log line, if it is one.
pub fn progress(line: &str) -> Option<Progress> {
    // Ginkgo writes its `S`/`•` markers on the same line, before the JSON.
    let json = &line[line.find("{\"msg\"")?..];
    let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    let msg = v["msg"].as_str()?;
    if !(msg.starts_with("PASSED ") || msg.starts_with("FAILED ")) {
        return None;
    }
    Some(Progress {
        msg: msg.to_string(),
        completed: v["completed"].as_i64().unwrap_or(0),
        total: v["total"].as_i64().unwrap_or(-1),
    })
}

/// Follows a growing log and says its progress lines:
/// `[completed/total] PASSED name` from one node, `[k] PASSED name` (the
/// k-th case done by any node) from several.
#[derive(Debug, Default)]
pub struct Follower {
    at: u64,
    pending: String,
    done: u32,
}

impl Follower {
    /// What the progress line `p` is shown as.
    pub fn show(&mut self, p: &Progress) -> String {
        self.done += 1;
        if p.total >= 0 {
            format!("[{}/{}] {}", p.completed, p.total, p.msg)
        } else {
            format!("[{}] {}", self.done, p.msg)
        }
    }

    /// Feeds text read from the log; complete lines are looked at.
    pub fn feed(&mut self, text: &str, say: &mut dyn FnMut(&str)) {
        self.pending.push_str(text);
        while let Some(nl) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=nl).collect();
            if let Some(p) = progress(&line) {
                let s = self.show(&p);
                say(&s);
            }
        }
    }

    /// Reads what `log` gained since the last poll.
    pub fn poll(&mut self, log: &Path, say: &mut dyn FnMut(&str)) {
        let Ok(mut f) = File::open(log) else { return };
        if f.seek(SeekFrom::Start(self.at)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = f.read_to_end(&mut buf) {
            self.at += n as u64;
        }
        self.feed(&String::from_utf8_lossy(&buf), say);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_runs_e2e_test_and_several_run_ginkgo() {
        let (e2e, ginkgo) = (Path::new("/b/e2e.test"), Path::new("/b/ginkgo"));
        let args = vec!["--kubeconfig=/k".to_string(), "--ginkgo.focus=x".into()];
        assert_eq!(
            command_line(e2e, ginkgo, 1, &args),
            ["/b/e2e.test", "--kubeconfig=/k", "--ginkgo.focus=x"]
        );
        assert_eq!(command_line(e2e, ginkgo, 0, &args)[0], "/b/e2e.test");
        assert_eq!(
            command_line(e2e, ginkgo, 3, &args),
            [
                "/b/ginkgo",
                "-nodes=3",
                "-noColor",
                "/b/e2e.test",
                "--",
                "--kubeconfig=/k",
                "--ginkgo.focus=x"
            ]
        );
    }

    #[test]
    fn reads_progress_lines() {
        let l = r#"{"msg":"PASSED [sig-network] Services should find a service from listing all namespaces [Conformance]","total":40,"completed":3,"skipped":100,"failed":0}"#;
        let mut f = Follower::default();
        assert_eq!(
            f.show(&progress(l).unwrap()),
            "[3/40] PASSED [sig-network] Services should find a service from listing all namespaces [Conformance]"
        );
        assert!(progress(r#"{"msg":"Test Suite starting","total":40}"#).is_none());
        let marked = format!("SSSS•{l}\n");
        assert!(f
            .show(&progress(&marked).unwrap())
            .starts_with("[3/40] PASSED [sig-network] Services"));
        assert!(progress("Dec  6 03:00:00.000: INFO: x").is_none());
    }

    #[test]
    fn parallel_progress_is_counted_across_nodes() {
        // Two nodes, each counting its own cases, total -1; split lines.
        let log = concat!(
            "SSS•\n------\n",
            r#"{"msg":"PASSED a","total":-1,"completed":1,"skipped":3,"failed":0}"#,
            "\n\nSS•\n",
            r#"{"msg":"FAILED b","total":-1,"completed":1,"skipped":5,"failed":1}"#,
            "\n",
            r#"{"msg":"PASSED c","total":-1,"completed":2,"#,
        );
        let mut said = vec![];
        let mut f = Follower::default();
        f.feed(log, &mut |s| said.push(s.to_string()));
        assert_eq!(said, ["[1] PASSED a", "[2] FAILED b"]);
        f.feed("\"skipped\":9,\"failed\":0}\n", &mut |s| {
            said.push(s.to_string())
        });
        assert_eq!(said.last().unwrap(), "[3] PASSED c");
    }

    #[test]
    fn reads_every_nodes_report_and_clears_old_ones() {
        let dir = std::env::temp_dir().join(format!("ferry-ginkgo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let case = |name: &str, body: &str| {
            format!(
                "<testsuite>\n<testcase name=\"{name}\" classname=\"e2e\" time=\"2\">{body}</testcase>\n</testsuite>\n"
            )
        };
        std::fs::write(dir.join("junit_01.xml"), case("a", "")).unwrap();
        std::fs::write(dir.join("junit_02.xml"), case("b", "<failure>x</failure>")).unwrap();
        std::fs::write(dir.join("e2e.log"), case("not a report", "")).unwrap();
        let c = cases(&dir);
        assert_eq!(
            c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(c[1].status, junit::Status::Failed);
        clear_reports(&dir).unwrap();
        assert!(reports(&dir).is_empty());
        assert!(dir.join("e2e.log").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
