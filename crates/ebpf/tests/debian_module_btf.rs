//! The conntrack kfuncs on a distribution kernel, where `nf_conntrack` is
//! a module: found in the module's split BTF, over vmlinux's, exactly as
//! `FastPath::load` looks them up in `/sys/kernel/btf`.
//!
//! The CI kernel has nf_conntrack built in, so this runs the lookup on the
//! real BTF of Debian 12's stock kernel instead. Setup: `apt-get download`
//! the kernel image package apt offers (`linux-image-amd64`'s dependency,
//! e.g. linux-image-6.1.0-57-amd64 6.1.192-3), take `nf_conntrack.ko`'s
//! `.BTF` section (what the kernel shows as /sys/kernel/btf/nf_conntrack)
//! and the `.BTF` section of the vmlinux inside `/boot/vmlinuz-*` (what it
//! shows as /sys/kernel/btf/vmlinux), and lay them out as that directory.
//! Cached under the target directory; `FERRY_DEBIAN_KERNEL_DEB=<path>`
//! uses a package already downloaded. Needs apt and network (Debian).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_ebpf::btf::{kfuncs_in, Btf, Kfunc, KIND_FUNC};

const KIND_PTR: u32 = 2;
const KIND_STRUCT: u32 = 4;
const KIND_FUNC_PROTO: u32 = 13;

fn sh(cmd: &str, dir: &Path) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("sh");
    assert!(out.status.success(), "{cmd}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `.BTF` section of a little-endian ELF64 file.
fn elf_btf(elf: &[u8]) -> Vec<u8> {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a little-endian ELF64 file");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    // Section header: name @0, offset @24, size @32.
    let names = u64_at(header(shstrndx) + 24);
    (0..shnum)
        .map(header)
        .find(|&h| elf[names + u32_at(h)..].starts_with(b".BTF\0"))
        .map(|h| elf[u64_at(h + 24)..u64_at(h + 24) + u64_at(h + 32)].to_vec())
        .expect("a .BTF section")
}

/// vmlinux out of a bzImage: the xz stream inside it, decompressed.
fn vmlinux_of(vmlinuz: &Path, dir: &Path) -> Vec<u8> {
    let image = std::fs::read(vmlinuz).unwrap();
    let start = (image.windows(6))
        .position(|w| w == b"\xfd7zXZ\0")
        .expect("an xz-compressed kernel (Debian's)");
    std::fs::write(dir.join("payload.xz"), &image[start..]).unwrap();
    sh(
        "xz -dc --single-stream payload.xz > vmlinux && rm payload.xz",
        dir,
    );
    std::fs::read(dir.join("vmlinux")).unwrap()
}

/// A directory laid out as Debian 12's /sys/kernel/btf with nf_conntrack
/// loaded: `vmlinux` and `nf_conntrack`. Returns it and the package name.
fn debian_sysfs() -> (PathBuf, String) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian-kernel-btf");
    let sysfs = cache.join("sys-kernel-btf");
    if let Ok(pkg) = std::fs::read_to_string(cache.join("package")) {
        return (sysfs, pkg);
    }
    let work = cache.join("work");
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(&work).unwrap();
    let deb = match std::env::var("FERRY_DEBIAN_KERNEL_DEB") {
        Ok(deb) => PathBuf::from(deb),
        Err(_) => {
            let pkg = sh(
                "apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \\(linux-image-[0-9].*-amd64\\)$/\\1/p' | head -1",
                &work,
            );
            let pkg = pkg.trim();
            assert!(
                !pkg.is_empty(),
                "apt offers no linux-image-amd64 (apt-get update?)"
            );
            sh(&format!("apt-get download -q {pkg} 2>/dev/null"), &work);
            std::fs::read_dir(&work)
                .unwrap()
                .filter_map(|e| Some(e.ok()?.path()))
                .find(|p| p.extension().is_some_and(|x| x == "deb"))
                .expect("the downloaded package")
        }
    };
    let deb = deb.canonicalize().unwrap();
    sh(
        &format!(
            "dpkg --fsys-tarfile {} | tar -x --wildcards './boot/vmlinuz-*' '*/nf_conntrack.ko*'",
            deb.display()
        ),
        &work,
    );
    let ko = sh("find . -name 'nf_conntrack.ko*'", &work);
    let ko = ko.trim();
    let ko = if let Some(plain) = ko.strip_suffix(".xz") {
        sh(&format!("xz -d {ko}"), &work);
        plain.to_string()
    } else {
        ko.to_string()
    };
    let vmlinuz = sh("ls ./boot/vmlinuz-*", &work);
    let module = elf_btf(&std::fs::read(work.join(ko)).unwrap());
    let vmlinux = elf_btf(&vmlinux_of(&work.join(vmlinuz.trim()), &work));
    std::fs::create_dir_all(&sysfs).unwrap();
    std::fs::write(sysfs.join("vmlinux"), vmlinux).unwrap();
    std::fs::write(sysfs.join("nf_conntrack"), module).unwrap();
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::write(cache.join("package"), &name).unwrap();
    (sysfs, name)
}

/// The struct a pointer type points to, by name.
fn pointee<'a>(btf: &'a Btf<'a>, ptr: u32) -> &'a [u8] {
    let p = btf.type_by_id(ptr).expect("pointer type");
    assert_eq!(p.kind, KIND_PTR);
    let s = btf.type_by_id(p.size_or_type).expect("pointee");
    assert_eq!(s.kind, KIND_STRUCT, "{:?}", String::from_utf8_lossy(s.name));
    s.name
}

/// (return type, parameter types) of the function `id`.
fn signature(btf: &Btf<'_>, id: u32) -> (u32, Vec<u32>) {
    let f = btf.type_by_id(id).unwrap();
    assert_eq!(f.kind, KIND_FUNC);
    let proto = btf.type_by_id(f.size_or_type).unwrap();
    assert_eq!(proto.kind, KIND_FUNC_PROTO);
    let params = (proto.extra.chunks_exact(8))
        .map(|p| u32::from_ne_bytes(p[4..8].try_into().unwrap()))
        .collect();
    (proto.size_or_type, params)
}

#[test]
fn debian_12_kernel_has_the_conntrack_kfuncs_in_module_btf() {
    let (sysfs, package) = debian_sysfs();
    eprintln!("Debian kernel package: {package}");
    let vmlinux_bytes = std::fs::read(sysfs.join("vmlinux")).unwrap();
    let module_bytes = std::fs::read(sysfs.join("nf_conntrack")).unwrap();
    let vmlinux = Btf::parse(&vmlinux_bytes, None).unwrap();
    let module = Btf::parse(&module_bytes, Some(&vmlinux)).unwrap();

    // What FastPath::load finds: not in vmlinux (nf_conntrack=m), so in
    // the module, with ids after vmlinux's last one.
    let found = kfuncs_in(&sysfs, &["bpf_skb_ct_lookup", "bpf_ct_release"]).unwrap();
    for (k, name) in found.iter().zip(["bpf_skb_ct_lookup", "bpf_ct_release"]) {
        let Some(Kfunc { btf_id, module: m }) = k else {
            panic!("{name} not found in {package}");
        };
        assert_eq!(m.as_deref(), Some("nf_conntrack"), "{name}");
        assert_eq!(vmlinux.func_id(name), None, "{name} is not in vmlinux");
        assert!(*btf_id >= vmlinux.next_id(), "{name}: {btf_id}");
        assert_eq!(module.func_id(name), Some(*btf_id));
    }
    let (lookup, release) = (found[0].clone().unwrap(), found[1].clone().unwrap());
    eprintln!(
        "vmlinux: types 1..{}; nf_conntrack: bpf_skb_ct_lookup {}, bpf_ct_release {}",
        vmlinux.next_id() - 1,
        lookup.btf_id,
        release.btf_id
    );

    // The ids are the right ones: their prototypes are the kfuncs' own,
    // resolving from the module's types into vmlinux's (struct __sk_buff
    // is a vmlinux type).
    let (ret, params) = signature(&module, lookup.btf_id);
    assert_eq!(params.len(), 5, "skb, tuple, tuple size, opts, opts size");
    assert_eq!(pointee(&module, params[0]), b"__sk_buff");
    let skb = module.type_by_id(params[0]).unwrap().size_or_type;
    assert!(skb < vmlinux.next_id(), "struct __sk_buff is vmlinux's");
    assert_eq!(pointee(&module, params[1]), b"bpf_sock_tuple");
    assert_eq!(pointee(&module, params[3]), b"bpf_ct_opts");
    assert_eq!(pointee(&module, ret), b"nf_conn");
    let (_, params) = signature(&module, release.btf_id);
    assert_eq!(params.len(), 1);
    assert_eq!(pointee(&module, params[0]), b"nf_conn");

    // Without the module's BTF (module not loaded): not found, so
    // FastPath::load says the fast path is unsupported.
    let bare = sysfs.with_file_name("vmlinux-only");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(sysfs.join("vmlinux"), bare.join("vmlinux")).unwrap();
    assert_eq!(
        kfuncs_in(&bare, &["bpf_skb_ct_lookup"]).unwrap(),
        vec![None]
    );
}
