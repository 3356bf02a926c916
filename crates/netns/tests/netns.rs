//! Real-kernel tests for ferry-netns. They need root (CAP_SYS_ADMIN) and
//! create uniquely named namespaces that are always removed by a guard.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_netns::{create_named, delete_named, sysctl, NetNs, NetnsError};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Named test namespace, deleted on drop (also when a test panics).
struct TestNs {
    name: String,
    path: PathBuf,
}

impl TestNs {
    fn new() -> TestNs {
        let name = format!(
            "fns-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = create_named(&name).expect("create_named");
        TestNs { name, path }
    }

    fn open(&self) -> NetNs {
        NetNs::open(&self.path).expect("open test netns")
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if let Err(e) = delete_named(&self.name) {
            eprintln!("cleanup of netns {} failed: {e}", self.name);
        }
    }
}

fn ino(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

fn ip_ok(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .expect("run ip")
        .status
        .success()
}

#[test]
fn run_enters_namespace_and_leaves_caller_alone() {
    let t = TestNs::new();
    let ns = t.open();
    let outside = ino(Path::new("/proc/thread-self/ns/net"));
    let inside = ns
        .run(|| ino(Path::new("/proc/thread-self/ns/net")))
        .unwrap();
    assert_eq!(inside, ino(&t.path));
    assert_ne!(inside, outside);
    // The caller's thread did not move.
    assert_eq!(ino(Path::new("/proc/thread-self/ns/net")), outside);

    // A link created in there is not visible outside (processes spawned from
    // the helper thread inherit its namespace). (veth: this kernel has no
    // dummy driver.)
    let link = format!("fnsv{}", std::process::id() % 100_000);
    let created = ns
        .run(|| {
            ip_ok(&[
                "link", "add", &link, "type", "veth", "peer", "name", "fnsp0",
            ])
        })
        .unwrap();
    assert!(created);
    assert!(ns.run(|| ip_ok(&["link", "show", "dev", &link])).unwrap());
    assert!(!ip_ok(&["link", "show", "dev", &link]));
    // iproute2 sees the same namespace by name.
    assert!(ip_ok(&["-n", &t.name, "link", "show", "dev", &link]));
    assert!(ip_ok(&[
        "netns", "exec", &t.name, "ip", "link", "show", &link
    ]));
}

#[test]
fn current_matches_thread() {
    let cur = NetNs::current().unwrap();
    let st = std::fs::metadata(format!("/proc/self/fd/{}", cur.as_fd_raw())).unwrap();
    assert_eq!(st.ino(), ino(Path::new("/proc/thread-self/ns/net")));
    // Running in the current namespace works too.
    assert_eq!(cur.run(|| 41 + 1).unwrap(), 42);
}

trait RawFdExt {
    fn as_fd_raw(&self) -> i32;
}
impl RawFdExt for NetNs {
    fn as_fd_raw(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.as_fd().as_raw_fd()
    }
}

#[test]
fn open_errors() {
    let err = NetNs::open(Path::new("/run/netns/fns-definitely-missing")).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.errno(), Some(libc_enoent()));

    let err = NetNs::open(Path::new("/proc/self/status")).unwrap_err();
    assert!(matches!(err, NetnsError::NotNetns { .. }), "{err}");

    let err = NetNs::open(Path::new("/proc/self/ns/mnt")).unwrap_err();
    assert!(matches!(err, NetnsError::NotNetns { .. }), "{err}");
    assert!(err.to_string().contains("type is mnt"), "{err}");
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}

#[test]
fn panic_in_run_is_an_error() {
    let t = TestNs::new();
    let ns = t.open();
    let err = ns.run(|| -> u32 { panic!("kaboom") }).unwrap_err();
    match err {
        NetnsError::Panicked { message, .. } => assert_eq!(message, "kaboom"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn named_lifecycle() {
    let t = TestNs::new();
    let err = create_named(&t.name).unwrap_err();
    assert!(err.is_exists(), "{err}");
    // The failed second creation must not have disturbed the first one.
    t.open();

    let name = t.name.clone();
    drop(t);
    assert!(!Path::new("/run/netns").join(&name).exists());
    assert!(!delete_named(&name).unwrap());

    for bad in ["", "a/b", ".", "..", &"n".repeat(65)] {
        assert!(matches!(
            create_named(bad),
            Err(NetnsError::InvalidName { .. })
        ));
    }
}

#[test]
fn namespace_outlives_its_mount_while_open() {
    let t = TestNs::new();
    let ns = t.open();
    let expected = ino(&t.path);
    assert!(delete_named(&t.name).unwrap());
    let inside = ns
        .run(|| ino(Path::new("/proc/thread-self/ns/net")))
        .unwrap();
    assert_eq!(inside, expected);
}

#[test]
fn sysctl_is_per_namespace() {
    let t = TestNs::new();
    let ns = t.open();
    let host_before = sysctl::read("net.ipv4.conf.lo.forwarding").unwrap();
    ns.run(|| {
        sysctl::write("net/ipv4/conf/lo/forwarding", "1").unwrap();
        assert_eq!(sysctl::read("net.ipv4.conf.lo.forwarding").unwrap(), "1");
        sysctl::write("net.ipv4.conf.lo.forwarding", "0").unwrap();
        assert_eq!(sysctl::read("net/ipv4/conf/lo/forwarding").unwrap(), "0");
        sysctl::write("net.ipv4.conf.lo.forwarding", "1").unwrap();
        let err = sysctl::write("net/ipv4/conf/nosuchdev0/forwarding", "1").unwrap_err();
        assert!(err.is_not_found(), "{err}");
    })
    .unwrap();
    // The host namespace is untouched.
    assert_eq!(
        sysctl::read("net.ipv4.conf.lo.forwarding").unwrap(),
        host_before
    );
    // A fresh handle into the namespace still sees the value.
    let v = ns
        .run(|| sysctl::read("net.ipv4.conf.lo.forwarding"))
        .unwrap();
    assert_eq!(v.unwrap(), "1");
}

#[test]
fn run_alongside_works_on_both_sides_at_once() {
    let t = TestNs::new();
    let ns = t.open();
    let outside = ino(Path::new("/proc/thread-self/ns/net"));
    // Each side waits for the other: this only finishes if they overlap.
    let barrier = std::sync::Barrier::new(2);
    let (inside, here) = ns.run_alongside(
        || {
            barrier.wait();
            ino(Path::new("/proc/thread-self/ns/net"))
        },
        || {
            barrier.wait();
            ino(Path::new("/proc/thread-self/ns/net"))
        },
    );
    assert_eq!(inside.unwrap(), ino(&t.path));
    assert_eq!(here, outside);
}
