//! The WireGuard device as ferryd makes it, on this kernel, in a fresh
//! network namespace: the kernel refuses a `wireguard` link cleanly
//! (this kernel has no WireGuard), ferryd then starts the userspace
//! `ferry-wg`, configures it (MTU, addresses, key, peers), finds nothing
//! to change the second time, re-uses the running device after a
//! "restart" (a new agent), and removes it. Needs root, TUN, and
//! `cargo build -p ferry-wireguard-userspace` (the `ferry-wg` binary).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ferry_netns::NetNs;
use ferry_testkit::{ip, plugin_dir, unique};
use ferry_wireguard::uapi::UapiDevice;
use ferry_wireguard::{PrivateKey, PublicKey};
use ferryd::cli::Cli;
use ferryd::wireguard::{WgPeer, WgPlan, WG_IFNAME};
use ferryd::wireguard_device::{self, WgAgent};

struct Bed {
    ns: String,
    dir: tempfile::TempDir,
}

impl Drop for Bed {
    fn drop(&mut self) {
        // ferry-wg exits once its socket is gone.
        let _ = std::fs::remove_file(self.dir.path().join("run").join("ferry.wg.sock"));
        std::thread::sleep(Duration::from_millis(1500));
        let _ = ferry_netns::delete_named(&self.ns);
    }
}

/// ferryd's flags for the bed: encryption on, key and socket in its
/// directory, and `extra`.
fn opts(bed: &Bed, extra: &[&str]) -> ferryd::cli::Opts {
    let key = bed.dir.path().join("wg.key");
    let run = bed.dir.path().join("run");
    let mut args = vec![
        "ferryd",
        "--encryption",
        "wireguard",
        "--wireguard-key-file",
        key.to_str().unwrap(),
        "--wireguard-run-dir",
        run.to_str().unwrap(),
    ];
    args.extend(extra);
    Cli::try_parse_from(args).unwrap().opts
}

fn agent(bed: &Bed) -> WgAgent {
    let mut a = WgAgent::new(&opts(bed, &[])).unwrap();
    let bin = plugin_dir().join("ferry-wg");
    assert!(
        bin.exists(),
        "{} is not built: cargo build -p ferry-wireguard-userspace",
        bin.display()
    );
    a.set_userspace_binary(bin);
    a
}

fn plan() -> WgPlan {
    let peer: PublicKey = PrivateKey::generate().public_key();
    WgPlan {
        port: 51820,
        mtu: 1440,
        addrs: vec![
            "10.244.0.0/32".parse().unwrap(),
            "fd00:10:244::/128".parse().unwrap(),
        ],
        peers: vec![WgPeer {
            node: "k8s-2".into(),
            public_key: peer,
            endpoint: "172.16.97.76:51820".parse().unwrap(),
            cidrs: vec![
                "10.244.1.0/24".parse().unwrap(),
                "fd00:10:244:1::/64".parse().unwrap(),
            ],
        }],
    }
}

#[test]
fn no_kernel_wireguard_falls_back_to_ferry_wg_which_survives_a_restart() {
    let bed = Bed {
        ns: unique("wgd"),
        dir: tempfile::tempdir().unwrap(),
    };
    let path = ferry_netns::create_named(&bed.ns).unwrap();
    ip(Some(&bed.ns), &["link", "set", "lo", "up"]);
    let ns = NetNs::open(&path).unwrap();
    let plan = plan();
    let run: PathBuf = bed.dir.path().join("run");

    let (kernel, first, second) = ns
        .run(|| {
            let mut h = ferry_netlink::Handle::new().unwrap();
            // The kernel's answer to a `wireguard` link, here.
            let kernel = h.create_wireguard("wgprobe", 1420);
            if kernel.is_ok() {
                h.delete_link_by_name("wgprobe").unwrap();
            }
            let mut a = agent(&bed);
            let first = a.converge(&mut h, &plan).unwrap();
            let kind = a.kind();
            let second = a.converge(&mut h, &plan).unwrap();
            (kernel.map_err(|e| e.errno()), (first, kind), second)
        })
        .unwrap();
    match kernel {
        // This machine: no WireGuard in the kernel; the userspace device.
        Err(errno) => {
            assert_eq!(errno, Some(nix::libc::EOPNOTSUPP));
            assert_eq!(first.1, Some("userspace"));
        }
        Ok(()) => assert_eq!(first.1, Some("kernel")),
    }
    let (ifindex, changed) = first.0;
    assert!(changed);
    assert_eq!(
        second,
        (ifindex, false),
        "nothing to change the second time"
    );

    let link = ip(Some(&bed.ns), &["-d", "link", "show", WG_IFNAME]);
    assert!(link.contains("mtu 1440") && link.contains(",UP"), "{link}");
    let addrs = ip(Some(&bed.ns), &["addr", "show", "dev", WG_IFNAME]);
    assert!(
        addrs.contains("10.244.0.0/32") && addrs.contains("fd00:10:244::/128"),
        "{addrs}"
    );
    if first.1 == Some("userspace") {
        let st = UapiDevice::new(&run, WG_IFNAME).get().unwrap();
        assert_eq!(st.listen_port, 51820);
        let peer = &st.peers[&plan.peers[0].public_key];
        assert_eq!(peer.endpoint, Some(plan.peers[0].endpoint));
        assert_eq!(peer.allowed_ips.len(), 2);
        let key = std::fs::metadata(bed.dir.path().join("wg.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    // A restarted ferryd (a new agent, same key file) finds the device
    // running and changes nothing; there is still one ferry.wg.
    let again = ns
        .run(|| {
            let mut h = ferry_netlink::Handle::new().unwrap();
            agent(&bed).converge(&mut h, &plan).unwrap()
        })
        .unwrap();
    assert_eq!(again, (ifindex, false));
    let links = ip(Some(&bed.ns), &["-o", "link", "show"]);
    assert_eq!(links.matches(WG_IFNAME).count(), 1, "{links}");

    // Removed: the device goes (and ferry-wg with it).
    let removed = ns
        .run(|| {
            let mut h = ferry_netlink::Handle::new().unwrap();
            let r = wireguard_device::remove(&mut h, &run).unwrap();
            (r, h.link_by_name(WG_IFNAME).unwrap().is_none())
        })
        .unwrap();
    assert_eq!(removed, (true, true));
}

#[test]
fn without_spawning_ferryd_waits_for_a_device_started_otherwise() {
    let bed = Bed {
        ns: unique("wgw"),
        dir: tempfile::tempdir().unwrap(),
    };
    let path = ferry_netns::create_named(&bed.ns).unwrap();
    let ns = NetNs::open(&path).unwrap();
    let no_spawn = opts(&bed, &["--wireguard-spawn=false"]);
    let plan = plan();
    let (kernel, result) = ns
        .run(|| {
            let mut h = ferry_netlink::Handle::new().unwrap();
            let kernel = h.create_wireguard("wgprobe", 1420).is_ok();
            let _ = h.delete_link_by_name("wgprobe");
            let r = WgAgent::new(&no_spawn)
                .unwrap()
                .converge(&mut h, &plan)
                .map_err(|e| e.to_string());
            (kernel, r)
        })
        .unwrap();
    if kernel {
        // A kernel with WireGuard needs no userspace device.
        assert!(result.is_ok(), "{result:?}");
        return;
    }
    let err = result.unwrap_err();
    assert!(
        err.contains("waiting for a userspace WireGuard device")
            && err.contains("--wireguard-spawn=false"),
        "{err}"
    );
    let links = ip(Some(&bed.ns), &["-o", "link", "show"]);
    assert!(!links.contains(WG_IFNAME), "nothing made: {links}");
}
