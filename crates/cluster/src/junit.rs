//! What a ginkgo run of e2e.test left: the summary lines of its log and
//! the cases of its JUnit report (name, seconds, passed/failed/skipped).
//! Plain string scanning: the report is ginkgo v1's small, flat XML.

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub secs: f64,
    pub status: Status,
}

/// Ginkgo's closing lines: `Ran N of M Specs in S seconds` and
/// `SUCCESS! -- P Passed | F Failed | N Pending | S Skipped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub ran_line: String,
    pub counts_line: String,
    pub passed: u32,
    pub failed: u32,
    pub pending: u32,
    pub skipped: u32,
}

impl Summary {
    /// Both lines as ginkgo prints them.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.ran_line, self.counts_line)
    }
}

/// The last summary in a ginkgo log, if the run got that far.
pub fn summary(log: &str) -> Option<Summary> {
    let lines: Vec<&str> = log.lines().collect();
    let i = lines
        .iter()
        .rposition(|l| l.starts_with("Ran ") && l.contains(" Specs in ") && l.contains(" of "))?;
    let counts = lines[i + 1..]
        .iter()
        .find(|l| l.contains(" Passed | ") && l.contains(" Skipped"))?;
    let count = |what: &str| -> u32 {
        counts
            .split(['|', '-'])
            .map(str::trim)
            .find_map(|part| part.strip_suffix(what).map(str::trim))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Some(Summary {
        ran_line: lines[i].trim().to_string(),
        counts_line: counts.trim().to_string(),
        passed: count("Passed"),
        failed: count("Failed"),
        pending: count("Pending"),
        skipped: count("Skipped"),
    })
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + end]))
}

/// XML's entities as encoding/xml writes them.
pub fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#xA;", "\n")
        .replace("&#x9;", "\t")
        .replace("&amp;", "&")
}

/// Every `<testcase>` of a JUnit report.
pub fn cases(xml: &str) -> Vec<Case> {
    let mut out = vec![];
    let mut rest = xml;
    while let Some(at) = rest.find("<testcase ") {
        rest = &rest[at..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let self_closing = tag.ends_with('/');
        let body_end = if self_closing {
            tag_end
        } else {
            rest.find("</testcase>").unwrap_or(rest.len())
        };
        let body = &rest[tag_end..body_end];
        let status = if body.contains("<failure") || body.contains("<error") {
            Status::Failed
        } else if body.contains("<skipped") {
            Status::Skipped
        } else {
            Status::Passed
        };
        if let Some(name) = attr(tag, "name") {
            out.push(Case {
                name,
                secs: attr(tag, "time")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0.0),
                status,
            });
        }
        rest = &rest[body_end.max(1)..];
    }
    out
}

/// The `n` slowest cases that ran (passed or failed), slowest first.
pub fn slowest(cases: &[Case], n: usize) -> Vec<Case> {
    let mut ran: Vec<Case> = cases
        .iter()
        .filter(|c| c.status != Status::Skipped)
        .cloned()
        .collect();
    ran.sort_by(|a, b| b.secs.total_cmp(&a.secs));
    ran.truncate(n);
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ginkgo_summary() {
        let log = "noise\nRan 3 of 5667 Specs in 81.123 seconds\n\
                   FAIL! -- 2 Passed | 1 Failed | 0 Pending | 5664 Skipped\n--- FAIL: TestE2E\n";
        let s = summary(log).unwrap();
        assert_eq!((s.passed, s.failed, s.pending, s.skipped), (2, 1, 0, 5664));
        assert_eq!(s.ran_line, "Ran 3 of 5667 Specs in 81.123 seconds");
        assert!(s.text().contains("FAIL! -- 2 Passed"));
        assert!(summary("no summary here\n").is_none());
    }

    #[test]
    fn reads_ginkgos_aggregated_parallel_summary() {
        // `ginkgo -nodes=3`: the nodes' own lines come first, then the
        // aggregator's failures, summary and verdict.
        let log = "Running in parallel across 3 nodes\n\
                   {\"msg\":\"FAILED x\",\"total\":-1,\"completed\":4}\n\
                   Summarizing 1 Failure:\n\n[Fail] [sig-network] x\n\n\
                   Ran 31 of 5667 Specs in 412.345 seconds\n\
                   FAIL! -- 30 Passed | 1 Failed | 0 Pending | 5636 Skipped\n\n\n\
                   Ginkgo ran 1 suite in 7m2.1s\nTest Suite Failed\n";
        let s = summary(log).unwrap();
        assert_eq!((s.passed, s.failed, s.pending, s.skipped), (30, 1, 0, 5636));
        assert_eq!(s.ran_line, "Ran 31 of 5667 Specs in 412.345 seconds");
    }

    #[test]
    fn reads_junit_cases() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
  <testsuite name="Kubernetes e2e suite" tests="3" failures="1" errors="0" time="90">
      <testcase name="[sig-network] Services should serve a basic endpoint from pods  [Conformance]" classname="Kubernetes e2e suite" time="12.5"></testcase>
      <testcase name="[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: udp &#34;x&#34;" classname="Kubernetes e2e suite" time="40.25">
          <failure type="Failure">boom &amp; more</failure>
      </testcase>
      <testcase name="[sig-network] DNS should provide DNS for services  [Conformance]" classname="Kubernetes e2e suite" time="0">
          <skipped></skipped>
      </testcase>
  </testsuite>"#;
        let c = cases(xml);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].status, Status::Passed);
        assert_eq!(c[0].secs, 12.5);
        assert_eq!(c[1].status, Status::Failed);
        assert!(c[1].name.ends_with("udp \"x\""), "{}", c[1].name);
        assert_eq!(c[2].status, Status::Skipped);
        let s = slowest(&c, 5);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].secs, 40.25);
    }
}
