//! Runs a manifest's container the way a container runtime would, without
//! one: in the node's network namespace (the pod has `hostNetwork`), in a
//! root filesystem of its own holding the image's binaries and exactly the
//! container's volume mounts (each hostPath stood in for by a temp dir),
//! `/proc/sys` read-only, the root read-only when the manifest says so,
//! only the container's capabilities and environment (downward API filled
//! in), and the API reached through in-cluster config (service-account
//! token and CA, `KUBERNETES_SERVICE_HOST`/`_PORT`). A hostPath that is a
//! file system of its own on a node (the bpf file system at `/sys/fs/bpf`)
//! is stood in for by a fresh, private instance of it, shared by the
//! sandbox's containers as the node's is by its pods. A `privileged`
//! container gets every capability and a writable `/proc/sys` and `/sys`,
//! as runc gives it; mount propagation is not reproduced (a mount a
//! `Bidirectional` container makes stays in the container).
//!
//! The mounts are made by a shell script (test-side: `unshare`, `mount`,
//! `chroot`, `setpriv`) in a private mount namespace; nothing leaks to the
//! host, and the process is killed on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// What containerd gives every container besides its own environment.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// containerd's default capabilities (a container that drops nothing).
const DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// hostPaths that hold a file system of their own on a node, and its type.
const HOST_FILESYSTEMS: [(&str, &str); 1] = [(ferry_deploy::BPF_FS, "bpf")];

/// One node's worth of "host": the image, the hostPath stand-ins, the
/// service account.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub netns: String,
    pub node_name: String,
    /// The machine's hostname (`hostname`, `$HOSTNAME`): the node name
    /// unless a test says otherwise (kubeadm `--node-name`, cloud FQDNs).
    pub hostname: String,
    /// Whether the node has its file systems (the bpffs) on the hostPaths
    /// of [`HOST_FILESYSTEMS`]; false: a plain directory stands in.
    pub host_filesystems: bool,
    api_host: String,
    api_port: u16,
    /// ConfigMaps and Secrets by name: file name -> content.
    data: BTreeMap<String, BTreeMap<String, String>>,
    /// File systems mounted on volume stand-ins; unmounted on drop.
    mounted: Mutex<Vec<PathBuf>>,
}

/// Single-quoted for sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Sandbox {
    /// `binaries`: the directory holding the built `ferryd`, `ferry`,
    /// `ferry-ipam` (the image's content).
    pub fn new(
        netns: &str,
        node_name: &str,
        binaries: &Path,
        api: &ferry_apiserver::RunningServer,
    ) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("ferry-sandbox")
            .tempdir()
            .unwrap();
        let image = dir.path().join("image");
        fs::create_dir_all(&image).unwrap();
        for name in ["ferryd", "ferry", "ferry-ipam"] {
            let src = binaries.join(name);
            assert!(
                src.exists(),
                "{} is not built: run `cargo build -p ferryd -p ferry-plugin` first",
                src.display()
            );
            if fs::hard_link(&src, image.join(name)).is_err() {
                fs::copy(&src, image.join(name)).unwrap();
            }
        }
        let sa = dir.path().join("serviceaccount");
        fs::create_dir_all(&sa).unwrap();
        fs::write(sa.join("token"), api.token()).unwrap();
        fs::write(sa.join("ca.crt"), api.ca_pem()).unwrap();
        fs::write(sa.join("namespace"), ferry_deploy::NAMESPACE).unwrap();
        Sandbox {
            dir,
            netns: netns.into(),
            node_name: node_name.into(),
            hostname: node_name.into(),
            host_filesystems: true,
            api_host: api.addr().ip().to_string(),
            api_port: api.addr().port(),
            data: BTreeMap::new(),
            mounted: Mutex::new(Vec::new()),
        }
    }

    /// A ConfigMap or Secret the pod's volumes may name.
    pub fn add_data(&mut self, name: &str, files: BTreeMap<String, String>) {
        self.data.insert(name.into(), files);
    }

    /// The temp dir standing in for a hostPath or emptyDir volume.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        let d = self.dir.path().join("volumes").join(volume);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// The stand-in for the hostPath volume `volume` of host path `path`:
    /// its temp dir, with a fresh file system of the node's kind on it when
    /// the node has one there (see [`HOST_FILESYSTEMS`]). When that cannot
    /// be mounted, the plain dir (what a node without one has).
    pub fn host_path_dir(&self, volume: &str, path: &str) -> PathBuf {
        let dir = self.volume_dir(volume);
        let Some((_, fstype)) = HOST_FILESYSTEMS.iter().find(|(p, _)| *p == path) else {
            return dir;
        };
        if !self.host_filesystems {
            return dir;
        }
        let mut mounted = self.mounted.lock().unwrap();
        if !mounted.contains(&dir) {
            // As systemd mounts it.
            let status = Command::new("mount")
                .args(["-t", fstype, "-o", "mode=0700", fstype])
                .arg(&dir)
                .status();
            if status.is_ok_and(|s| s.success()) {
                mounted.push(dir.clone());
            } else {
                eprintln!("sandbox: cannot mount {fstype} for {path}; a plain dir stands in");
            }
        }
        dir
    }

    /// Starts `container` of `pod`. `caps`: replaces the capabilities the
    /// manifest grants (a negative control).
    pub fn start(&self, pod: &PodSpec, container: &Container, caps: Option<&[&str]>) -> Running {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let root = self.dir.path().join(format!("root{n}"));
        fs::create_dir_all(&root).unwrap();
        let r = root.display().to_string();
        let mut s = String::from("set -eu\n");
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("R={}", q(&r)));
        line("mount --make-rprivate /".into());
        // A hostNetwork pod has the machine's hostname.
        line(format!("hostname {}", q(&self.hostname)));
        line("mount -t tmpfs -o mode=755 tmpfs \"$R\"".into());
        line("mkdir -p \"$R/usr\" \"$R/proc\" \"$R/sys\" \"$R/dev\" \"$R/tmp\" \"$R/etc\"".into());
        for (link, to) in [
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
        ] {
            line(format!("ln -s {to} \"$R/{link}\""));
        }
        // The OS the binaries need (read-only), the image's binaries on top.
        // What images have: users (distroless and FRR's image have
        // /etc/passwd), /var/tmp; PAM for Debian's vtysh (standing in for
        // FRR's image).
        line("cp /etc/passwd /etc/group \"$R/etc/\"".into());
        line("mkdir -p -m 1777 \"$R/var/tmp\"".into());
        for dir in ["pam.d", "security"] {
            line(format!("mkdir -p \"$R/etc/{dir}\""));
            line(format!("mount --bind /etc/{dir} \"$R/etc/{dir}\""));
            line(format!("mount -o remount,bind,ro \"$R/etc/{dir}\""));
        }
        line("mount --rbind /usr \"$R/usr\"".into());
        line("mount -o remount,bind,ro \"$R/usr\"".into());
        let image = self.dir.path().join("image").display().to_string();
        let bin = ferry_deploy::IMAGE_BIN_DIR;
        line(format!("mount --bind {} \"$R{bin}\"", q(&image)));
        line(format!("mount -o remount,bind,ro \"$R{bin}\""));
        // /proc of the pod's netns with /proc/sys read-only, as runc does
        // (unless privileged).
        let sc = container.security_context.clone().unwrap_or_default();
        let privileged = sc.privileged == Some(true);
        line("mount -t proc proc \"$R/proc\"".into());
        if !privileged {
            line("mount --bind \"$R/proc/sys\" \"$R/proc/sys\"".into());
            line("mount -o remount,bind,ro \"$R/proc/sys\"".into());
        }
        let sys_mode = if privileged { "rw" } else { "ro" };
        line(format!("mount -t sysfs -o {sys_mode} sysfs \"$R/sys\""));
        line("mount --rbind /dev \"$R/dev\"".into());
        for m in container.volume_mounts.iter().flatten() {
            let vol = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)
                .unwrap_or_else(|| panic!("no volume {}", m.name));
            let mut src = match &vol.host_path {
                Some(h) => self.host_path_dir(&m.name, &h.path),
                None => self.volume_dir(&m.name),
            };
            let source = vol
                .config_map
                .as_ref()
                .map(|c| (c.name.clone(), c.default_mode))
                .or_else(|| {
                    vol.secret
                        .as_ref()
                        .map(|s| (s.secret_name.clone().unwrap_or_default(), s.default_mode))
                });
            if let Some((name, mode)) = source {
                let files = self
                    .data
                    .get(&name)
                    .unwrap_or_else(|| panic!("{name} does not exist (the pod would wait)"));
                for (file, content) in files {
                    let path = src.join(file);
                    fs::write(&path, content).unwrap();
                    let mode = mode.unwrap_or(0o644) as u32;
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
                }
            } else if vol.empty_dir.is_some() {
                // kubelet makes emptyDirs world-writable.
                fs::set_permissions(&src, fs::Permissions::from_mode(0o777)).unwrap();
            } else {
                assert!(
                    vol.host_path.is_some(),
                    "the sandbox has no {} volumes",
                    m.name
                );
            }
            let dst = format!("\"$R\"{}", q(&m.mount_path));
            if let Some(sub) = &m.sub_path {
                src = src.join(sub);
                line(format!("mkdir -p \"$(dirname {dst})\" && touch {dst}"));
            } else {
                line(format!("mkdir -p {dst}"));
            }
            let src = src.display().to_string();
            line(format!("mount --bind {} {dst}", q(&src)));
            if m.read_only == Some(true) {
                line(format!("mount -o remount,bind,ro {dst}"));
            }
        }
        if pod.automount_service_account_token != Some(false) {
            let sa = self.dir.path().join("serviceaccount").display().to_string();
            line(format!("mkdir -p \"$R{SA_DIR}\""));
            line(format!("mount --bind {} \"$R{SA_DIR}\"", q(&sa)));
            line(format!("mount -o remount,bind,ro \"$R{SA_DIR}\""));
        }
        if sc.read_only_root_filesystem == Some(true) {
            line("mount -o remount,ro \"$R\"".into());
        }
        // Capabilities: the manifest's `drop: [ALL]` + `add`.
        let granted: Vec<String> = match caps {
            Some(c) => c.iter().map(|c| c.to_string()).collect(),
            None => {
                let c = sc.capabilities.clone().unwrap_or_default();
                let mut caps: Vec<String> = match c.drop.as_deref() {
                    Some([all]) if all == "ALL" => Vec::new(),
                    None => DEFAULT_CAPS.iter().map(|c| c.to_string()).collect(),
                    Some(other) => panic!("the sandbox cannot drop {other:?}"),
                };
                caps.extend(c.add.unwrap_or_default());
                caps
            }
        };
        let mut bounding = String::from("-all");
        for c in &granted {
            bounding.push_str(&format!(",+{}", c.to_lowercase()));
        }
        let mut exec = format!(
            "exec chroot \"$R\" /usr/bin/env -i PATH={PATH} HOSTNAME={}",
            q(&self.hostname)
        );
        exec.push_str(&format!(
            " KUBERNETES_SERVICE_HOST={} KUBERNETES_SERVICE_PORT={}",
            self.api_host, self.api_port
        ));
        for (k, v) in self.env(container) {
            exec.push_str(&format!(" {k}={}", q(&v)));
        }
        if !privileged || caps.is_some() {
            exec.push_str(&format!(
                " /usr/bin/setpriv --inh-caps=-all --ambient-caps=-all --bounding-set={bounding}"
            ));
            if sc.allow_privilege_escalation == Some(false) {
                exec.push_str(" --no-new-privs");
            }
            exec.push_str(" --");
        }
        for a in container
            .command
            .iter()
            .flatten()
            .chain(container.args.iter().flatten())
        {
            exec.push_str(&format!(" {}", q(a)));
        }
        line(exec);

        let log = self.dir.path().join(format!("{}-{n}.log", container.name));
        let out = File::create(&log).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "unshare",
                "--mount",
                "--uts",
                "sh",
                "-c",
                &s,
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the sandbox");
        Running {
            child,
            log,
            script: s,
        }
    }

    /// The container's environment, the downward API filled in.
    fn env(&self, c: &Container) -> BTreeMap<String, String> {
        c.env
            .iter()
            .flatten()
            .map(|e| {
                let v = match (&e.value, &e.value_from) {
                    (Some(v), None) => v.clone(),
                    (None, Some(from)) => {
                        let field = from.field_ref.as_ref().map(|f| f.field_path.as_str());
                        assert_eq!(
                            field,
                            Some("spec.nodeName"),
                            "{}: unsupported source",
                            e.name
                        );
                        self.node_name.clone()
                    }
                    _ => panic!("{}: no value", e.name),
                };
                (e.name.clone(), v)
            })
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for dir in self.mounted.get_mut().unwrap().drain(..) {
            let _ = Command::new("umount").arg("-l").arg(&dir).status();
        }
    }
}

/// A container process; killed on drop.
pub struct Running {
    child: Child,
    log: PathBuf,
    pub script: String,
}

impl Running {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the exit, at most `limit` (then kills it and panics).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running after {limit:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the log contains `needle` (true) or the process exits or
    /// `limit` passes (false).
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log().contains(needle) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return self.log().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// SIGTERM (as kubelet stops a container), then the exit status.
    pub fn stop(&mut self, limit: Duration) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait(limit)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
