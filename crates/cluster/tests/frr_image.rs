//! The FRR image made from Debian's packages runs as FRR's own does: its
//! root file system (the layer, unpacked) in a chroot inside fresh network,
//! mount and pid namespaces runs `docker-start` (watchfrr starting the
//! daemons of /etc/frr/daemons), vtysh answers and frr-reload.py applies a
//! config there, as ferryd does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The image's layer unpacked into `<dir>/root`.
fn unpack(archive: &Path, dir: &Path) -> PathBuf {
    let x = dir.join("x");
    let root = dir.join("root");
    std::fs::create_dir_all(&x).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let untar = |a: &Path, to: &Path| {
        assert!(Command::new("tar")
            .arg("-xf")
            .arg(a)
            .arg("-C")
            .arg(to)
            .status()
            .unwrap()
            .success())
    };
    untar(archive, &x);
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |v: &serde_json::Value| {
        x.join("blobs/sha256")
            .join(&v["digest"].as_str().unwrap()["sha256:".len()..])
    };
    let index = json(x.join("index.json"));
    let manifest = json(blob(&index["manifests"][0]));
    untar(&blob(&manifest["layers"][0]), &root);
    root
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // Killing the pid namespace's init (unshare's child) takes every
        // daemon with it.
        let pid = self.0.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for c in children.split_whitespace() {
            let _ = Command::new("kill").args(["-9", c]).status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn frr_image_starts_daemons_and_answers_vtysh() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for b in ferry_cluster::images::FERRY_BINARIES {
        std::fs::copy("/bin/busybox", bin.join(b)).unwrap(); // any file will do
    }
    let archives = ferry_cluster::frr_image::write(dir.path(), &bin).unwrap();
    let root = unpack(&archives[1], dir.path());
    assert!(root.join("usr/local/bin/ferryd").exists());
    std::fs::write(
        root.join("etc/frr/daemons"),
        "zebra=yes\nstaticd=yes\nospfd=yes\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/frr/frr.conf"),
        "ip route 10.99.0.0/24 blackhole\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/frr/vtysh.conf"),
        "service integrated-vtysh-config\n",
    )
    .unwrap();
    let r = root.display().to_string();
    let script = format!(
        "mount -t proc proc {r}/proc && mount --rbind /dev {r}/dev && \
         exec chroot {r} /sbin/tini -- /usr/lib/frr/docker-start"
    );
    let daemons = Killed(
        Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--pid",
                "--fork",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let pid = daemons.0.id();
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < Duration::from_secs(30) {
        // unshare's child (pid 1 of the new pid namespace) runs tini.
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            let enter = format!("nsenter -t {c} -n -m -p chroot {r}");
            let (ok, out) = sh(&format!("{enter} vtysh -c 'show running-config'"));
            if ok && out.contains("frr version 8.4.4") {
                // What ferryd does: frr-reload.py applies frr.conf.
                let (ok, out) = sh(&format!(
                    "{enter} python3 /usr/lib/frr/frr-reload.py --reload /etc/frr/frr.conf"
                ));
                assert!(ok, "frr-reload.py: {out}");
                let (_, out) = sh(&format!("{enter} vtysh -c 'show running-config'"));
                assert!(out.contains("ip route 10.99.0.0/24 blackhole"), "{out}");
                return;
            }
            last = out;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("vtysh never answered: {last}");
}
