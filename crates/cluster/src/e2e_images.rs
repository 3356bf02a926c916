//! The images Kubernetes' e2e tests (v1.20.2) ask for, made here from
//! files on this machine under the exact names and tags of
//! `test/utils/image/manifest.go`, so a node never pulls:
//!
//! - `k8s.gcr.io/e2e-test-images/agnhost:2.21`: as test/images/agnhost's
//!   Dockerfile lays it out (`/agnhost`, `/agnhost-2`, entrypoint
//!   `/agnhost`, cmd `pause`, `/uploads`, porter's `localhost.crt/.key`),
//!   the static agnhost scripts/kubernetes.sh builds, busybox-static's
//!   applets for the alpine base (but `/bin/sh` is bash), and the host's `bash`, `curl`,
//!   `wget`, `nc` (netcat-openbsd), `ss`, `ip` with their shared libraries: the
//!   tests exec `curl -g -q -s ...`, `nc -zv -t -w 2 ...`,
//!   `echo x | nc -w 1 -u ...` in agnhost pods;
//! - `docker.io/library/busybox:1.29`: busybox-static, every applet in `/bin`;
//! - `k8s.gcr.io/pause:3.2`: a shell that sleeps and exits on SIGTERM
//!   (as the real pause does, so pods using it stop at once).
//!
//! An image a test wants that is not here (nginx, httpd, jessie-dnsutils,
//! ...) is never faked: the case is skipped by name in `conformance/skips.txt`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{ClusterError, Result};
use crate::images::{is_static_elf, BUSYBOX};
use crate::oci::{self, Entry, Image};
use crate::paths::ClusterPaths;
use crate::util::{mkdir, run};

pub const AGNHOST: &str = "k8s.gcr.io/e2e-test-images/agnhost:2.21";
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:1.29";
pub const PAUSE: &str = "k8s.gcr.io/pause:3.2";

/// The alpine base's PATH (agnhost) and busybox's.
const ALPINE_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host tools copied into agnhost with their libraries: (host path, image path).
/// `nc` must be netcat-openbsd's (busybox's has no -z, -u, -v).
/// `wget` must be GNU's: busybox-static's crashes once the image holds a
/// glibc (its static NSS loads the image's libc).
pub const AGNHOST_TOOLS: [(&str, &str); 6] = [
    ("/bin/bash", "/bin/bash"),
    ("/usr/bin/curl", "/usr/bin/curl"),
    ("/usr/bin/wget", "/usr/bin/wget"),
    ("/bin/nc.openbsd", "/usr/bin/nc"),
    ("/usr/bin/ss", "/usr/sbin/ss"),
    ("/usr/bin/ip", "/sbin/ip"),
];

/// Builds an image's file list: adds every missing parent directory and
/// drops duplicate paths (the first one wins).
#[derive(Default)]
struct Tree {
    seen: BTreeSet<String>,
    entries: Vec<Entry>,
}

impl Tree {
    fn parents(&mut self, path: &str) {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for i in 1..parts.len() {
            let d = parts[..i].join("/");
            if self.seen.insert(d.clone()) {
                let mode = if d == "tmp" { 0o1777 } else { 0o755 };
                self.entries.push(Entry::Dir { path: d, mode });
            }
        }
    }
    fn dir(&mut self, path: &str, mode: u32) {
        self.parents(path);
        let p = path.trim_matches('/').to_string();
        if self.seen.insert(p.clone()) {
            self.entries.push(Entry::Dir { path: p, mode });
        }
    }
    fn file(&mut self, path: &str, mode: u32, from: PathBuf) {
        self.parents(path);
        let p = path.trim_matches('/').to_string();
        if self.seen.insert(p.clone()) {
            self.entries.push(Entry::File {
                path: p,
                mode,
                from,
            });
        }
    }
    fn symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        let p = path.trim_matches('/').to_string();
        if self.seen.insert(p.clone()) {
            self.entries.push(Entry::Symlink {
                path: p,
                target: target.into(),
            });
        }
    }
    /// A dynamically linked host binary at `dest`, and every library
    /// `ldd` names at the path it names (the loader's default dirs).
    fn binary_with_libs(&mut self, host: &str, dest: &str) -> Result<()> {
        if !Path::new(host).is_file() {
            return Err(ClusterError::Invalid(format!(
                "{host} not found: the agnhost image takes it from this host \
                 (apt-get install netcat-openbsd curl wget iproute2 bash)"
            )));
        }
        self.file(dest, 0o755, PathBuf::from(host));
        for lib in shared_libraries(Path::new(host))? {
            let real = std::fs::canonicalize(&lib).map_err(ClusterError::io("resolving", &lib))?;
            self.file(&lib.display().to_string(), 0o755, real);
        }
        Ok(())
    }
    /// busybox-static in /bin with links for `applets`.
    fn busybox(&mut self, applets: &[String]) {
        self.file("/bin/busybox", 0o755, PathBuf::from(BUSYBOX));
        for a in applets {
            self.symlink(&format!("/bin/{a}"), "busybox");
        }
    }
    fn base(&mut self) {
        for d in ["etc", "proc", "sys", "dev", "run", "root", "var", "usr/bin"] {
            self.dir(d, 0o755);
        }
        self.dir("tmp", 0o1777);
    }
}

/// The libraries (and the loader) `ldd` lists for `bin`.
pub fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = run(Command::new("ldd").arg(bin))?;
    Ok(parse_ldd(&out))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)`: the absolute paths.
pub fn parse_ldd(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let p = l.split_once("=>").map(|(_, r)| r.trim()).unwrap_or(l);
            let p = p.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect()
}

/// busybox-static's applets (`busybox --list`), less `busybox` itself.
pub fn busybox_applets() -> Result<Vec<String>> {
    let out = run(Command::new(BUSYBOX).arg("--list"))?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
        .map(String::from)
        .collect())
}

fn passwd(t: &mut Tree, dir: &Path) -> Result<()> {
    let files = [
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("group", "root:x:0:\nnogroup:x:65534:\n"),
    ];
    for (name, text) in files {
        let p = dir.join(format!("etc-{name}"));
        crate::util::write_file(&p, text.as_bytes(), 0o644)?;
        t.file(&format!("/etc/{name}"), 0o644, p);
    }
    Ok(())
}

/// agnhost 2.21 from the static `agnhost` binary, porter's certificate
/// from the Kubernetes tree (`src`), and the host's tools.
pub fn agnhost(agnhost_bin: &Path, src: &Path, scratch: &Path) -> Result<Image> {
    if !is_static_elf(agnhost_bin)? {
        return Err(ClusterError::Invalid(format!(
            "{} is not a static executable (scripts/kubernetes.sh e2e builds it with CGO off)",
            agnhost_bin.display()
        )));
    }
    let mut t = Tree::default();
    t.base();
    t.file("/agnhost", 0o755, agnhost_bin.to_path_buf());
    t.symlink("/agnhost-2", "agnhost");
    t.dir("/uploads", 0o755);
    for f in ["localhost.crt", "localhost.key"] {
        t.file(f, 0o644, src.join("test/images/agnhost/porter").join(f));
    }
    for (host, dest) in AGNHOST_TOOLS {
        t.binary_with_libs(host, dest)?;
    }
    // /bin/sh is bash: Debian's busybox-static prefers its own applets
    // (FEATURE_PREFER_APPLETS), so its ash would run busybox's nc, not
    // netcat-openbsd, for `/bin/sh -c "... | nc -u ..."`.
    t.symlink("/bin/sh", "bash");
    // Applets not shadowed by a real tool above.
    let real: Vec<&str> = AGNHOST_TOOLS
        .iter()
        .filter_map(|(_, d)| d.rsplit('/').next())
        .chain(["sh"])
        .collect();
    let applets: Vec<String> = busybox_applets()?
        .into_iter()
        .filter(|a| !real.contains(&a.as_str()))
        .collect();
    t.busybox(&applets);
    passwd(&mut t, scratch)?;
    Ok(Image {
        name: AGNHOST.into(),
        entries: t.entries,
        entrypoint: vec!["/agnhost".into()],
        cmd: vec!["pause".into()],
        env: vec![ALPINE_PATH.into()],
    })
}

/// busybox 1.29 (the tests use sh, sleep, wget, nc, cat, ...).
pub fn busybox(scratch: &Path) -> Result<Image> {
    let mut t = Tree::default();
    t.base();
    t.busybox(&busybox_applets()?);
    passwd(&mut t, scratch)?;
    Ok(Image {
        name: BUSYBOX_IMAGE.into(),
        entries: t.entries,
        entrypoint: vec![],
        cmd: vec!["sh".into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
    })
}

/// pause 3.2: sleeps until SIGTERM/SIGINT, then exits 0.
pub fn pause() -> Image {
    let mut t = Tree::default();
    t.base();
    t.busybox(&["sh".into(), "sleep".into()]);
    Image {
        name: PAUSE.into(),
        entries: t.entries,
        entrypoint: vec![
            "/bin/sh".into(),
            "-c".into(),
            "trap 'exit 0' TERM INT; sleep 2147483647 & wait".into(),
        ],
        cmd: vec![],
        env: vec!["PATH=/bin".into()],
    }
}

/// The Kubernetes source tree scripts/kubernetes.sh builds from (next to
/// its `bin/`).
pub fn kube_src(paths: &ClusterPaths) -> PathBuf {
    paths
        .kube_bin
        .parent()
        .unwrap_or(Path::new("/"))
        .join("src")
}

/// Writes the e2e images' archives under `<root>/images/e2e/`; their paths.
pub fn write_all(paths: &ClusterPaths) -> Result<Vec<PathBuf>> {
    let dir = paths.images().join("e2e");
    mkdir(&dir)?;
    let agnhost_bin = paths.kube_binary("agnhost")?;
    let mut out = vec![];
    for (file, img) in [
        (
            "agnhost.tar",
            agnhost(&agnhost_bin, &kube_src(paths), &dir)?,
        ),
        ("busybox.tar", busybox(&dir)?),
        ("pause.tar", pause()),
    ] {
        let p = dir.join(file);
        oci::write_archive(&img, &p)?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibbsd.so.0 => /lib/x86_64-linux-gnu/libbsd.so.0 (0x00007f)\n\
                   \tnotfound.so => not found\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libbsd.so.0"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn tree_adds_parents_once_and_keeps_the_first() {
        let mut t = Tree::default();
        t.file("/usr/bin/curl", 0o755, "/a".into());
        t.file("/usr/bin/curl", 0o755, "/b".into());
        t.symlink("/usr/bin/x", "curl");
        let names: Vec<String> = t
            .entries
            .iter()
            .map(|e| match e {
                Entry::Dir { path, .. } => format!("d {path}"),
                Entry::File { path, from, .. } => format!("f {path} {}", from.display()),
                Entry::Symlink { path, .. } => format!("l {path}"),
            })
            .collect();
        assert_eq!(
            names,
            ["d usr", "d usr/bin", "f usr/bin/curl /a", "l usr/bin/x"]
        );
    }

    #[test]
    fn agnhost_has_its_layout_and_sh_is_bash() {
        let dir = tempfile::tempdir().unwrap();
        let porter = dir.path().join("test/images/agnhost/porter");
        std::fs::create_dir_all(&porter).unwrap();
        for f in ["localhost.crt", "localhost.key"] {
            std::fs::write(porter.join(f), b"x").unwrap();
        }
        // busybox-static stands in for the static agnhost binary.
        let img = agnhost(Path::new(BUSYBOX), dir.path(), dir.path()).unwrap();
        assert_eq!(img.name, "k8s.gcr.io/e2e-test-images/agnhost:2.21");
        assert_eq!(img.entrypoint, ["/agnhost"]);
        assert_eq!(img.cmd, ["pause"]);
        let link = |p: &str| {
            img.entries.iter().find_map(|e| match e {
                Entry::Symlink { path, target } if path == p => Some(target.clone()),
                _ => None,
            })
        };
        let file = |p: &str| {
            img.entries
                .iter()
                .any(|e| matches!(e, Entry::File { path, .. } if path == p))
        };
        assert_eq!(link("bin/sh").as_deref(), Some("bash"));
        assert_eq!(link("agnhost-2").as_deref(), Some("agnhost"));
        assert_eq!(link("bin/seq").as_deref(), Some("busybox"));
        assert!(link("bin/wget").is_none() && file("usr/bin/wget"));
        assert!(link("bin/nc").is_none(), "busybox's nc must not be there");
        assert!(file("usr/bin/nc") && file("usr/bin/curl") && file("bin/bash"));
        assert!(file("lib64/ld-linux-x86-64.so.2"));
        assert!(agnhost(Path::new("/bin/ls"), dir.path(), dir.path()).is_err());
    }

    #[test]
    fn pause_and_busybox_images_have_their_names_and_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let b = busybox(dir.path()).unwrap();
        assert_eq!(b.name, "docker.io/library/busybox:1.29");
        let has = |img: &Image, p: &str| {
            img.entries.iter().any(|e| match e {
                Entry::Symlink { path, .. } | Entry::File { path, .. } => path == p,
                Entry::Dir { .. } => false,
            })
        };
        assert!(has(&b, "bin/sh") && has(&b, "bin/wget") && has(&b, "etc/passwd"));
        let p = pause();
        assert_eq!(p.name, "k8s.gcr.io/pause:3.2");
        assert!(has(&p, "bin/sh") && has(&p, "bin/sleep"));
    }
}
