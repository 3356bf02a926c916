//! A bench's congestion control: set as a namespace's default even when
//! namespaces may not choose it, and the kernel's allowed list put back.

use std::sync::Mutex;

use ferry_lab::congestion::Congestion;
use ferry_lab::sh;

const ALLOWED: &str = "net.ipv4.tcp_allowed_congestion_control";

/// Both tests read the kernel-wide allowed list: one at a time.
static KERNEL_LIST: Mutex<()> = Mutex::new(());

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh::ip(None, &["netns", "del", &self.0]);
    }
}

fn read(key: &str) -> String {
    ferry_netns::sysctl::read(key).unwrap()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn a_namespace_gets_the_chosen_congestion_control_and_the_allowed_list_comes_back() {
    let _one = KERNEL_LIST.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns(format!("cct-{}", std::process::id()));
    sh::ip(None, &["netns", "add", &ns.0]).unwrap();
    let before = read(ALLOWED);
    // One the namespaces may not choose yet, when the kernel has one.
    let available = words(&read("net.ipv4.tcp_available_congestion_control"));
    let restricted = available.iter().find(|n| !words(&before).contains(n));
    let name = restricted.cloned().unwrap_or_else(|| "reno".into());

    let cc = Congestion::select(&name).unwrap();
    assert!(
        words(&read(ALLOWED)).contains(&name),
        "{name} allowed while selected"
    );
    cc.apply_to([ns.0.as_str()]).unwrap();
    let set = sh::ns_output(&ns.0, "cat", &["/proc/sys/net/ipv4/tcp_congestion_control"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), name);
    assert!(cc.describe().contains(&name), "{}", cc.describe());
    drop(cc);
    assert_eq!(read(ALLOWED), before, "the allowed list as it was");
    if restricted.is_none() {
        eprintln!("every congestion control was already allowed: the list was not extended");
    }
}

#[test]
fn a_name_the_kernel_does_not_offer_is_refused_and_changes_nothing() {
    let _one = KERNEL_LIST.lock().unwrap_or_else(|e| e.into_inner());
    let before = read(ALLOWED);
    let err = Congestion::select("no-such-cc").unwrap_err().to_string();
    assert!(err.contains("not one this kernel offers"), "{err}");
    assert_eq!(read(ALLOWED), before);
}
