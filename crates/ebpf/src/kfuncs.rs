//! The kernel functions the program calls (conntrack's lookup and
//! release), found wherever the running kernel has them: vmlinux when
//! `nf_conntrack` is built in, the module's BTF when it is a module (as on
//! Debian's and Ubuntu's stock kernels). A module's kfunc is called through
//! its BTF fd, passed in the load's `fd_array` at the index the call
//! instruction's `off` names (as libbpf does).

use std::os::fd::{AsRawFd, OwnedFd};

use crate::btf::{self, Kfunc};
use crate::error::EbpfError;

/// The oldest Linux release the fast path is made for: the program passes
/// `struct bpf_ct_opts` as Linux 6.1 (the first LTS release with the
/// conntrack kfuncs) defines it. Below it ferryd says so plainly instead of
/// leaving the verifier to refuse the program.
pub const MIN_KERNEL: (u32, u32) = (6, 1);

/// `bpf_skb_ct_lookup`, `bpf_ct_release`.
pub const NAMES: [&str; 2] = ["bpf_skb_ct_lookup", "bpf_ct_release"];

/// (major, minor) of a release string such as `6.1.0-57-amd64`.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().splitn(3, ['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// Refuses a kernel older than [`MIN_KERNEL`] with a clear reason.
pub fn check_release(release: &str) -> Result<(), EbpfError> {
    match parse_release(release) {
        Some(v) if v >= MIN_KERNEL => Ok(()),
        Some(_) => Err(EbpfError::Unsupported(format!(
            "Linux {} is older than {}.{}, the first release the fast path runs on",
            release.trim(),
            MIN_KERNEL.0,
            MIN_KERNEL.1
        ))),
        // An unusual release string: let the BTF and the verifier decide.
        None => Ok(()),
    }
}

/// The kfuncs as the program references them — (BTF id, index of their
/// module's BTF fd in `fd_array`, 0 for vmlinux), in [`NAMES`] order — and
/// the `fd_array` to load it with (empty when all are in vmlinux). The
/// fds in the third value must stay open until the program is loaded.
pub type Resolved = (Vec<(u32, i16)>, Vec<i32>, Vec<OwnedFd>);

/// Finds [`NAMES`] in the running kernel and opens their modules' BTF.
pub fn resolve() -> Result<Resolved, EbpfError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    check_release(&release)?;
    let found = btf::kernel_kfuncs(&NAMES)?;
    let Some(found) = found.into_iter().collect::<Option<Vec<Kfunc>>>() else {
        return Err(EbpfError::Unsupported(
            "the conntrack kfuncs (bpf_skb_ct_lookup, bpf_ct_release) are in neither vmlinux's \
             BTF nor a loaded module's (nf_conntrack not loaded, or a kernel without \
             CONFIG_DEBUG_INFO_BTF_MODULES)"
                .into(),
        ));
    };
    let mut modules: Vec<(String, OwnedFd)> = Vec::new();
    let mut refs = Vec::new();
    for k in found {
        let index = match k.module {
            None => 0,
            Some(m) => match modules.iter().position(|(name, _)| *name == m) {
                Some(i) => i + 1,
                None => {
                    let fd = btf::module_fd(&m).map_err(|e| module_btf_error(&m, e))?;
                    modules.push((m, fd));
                    modules.len()
                }
            },
        };
        refs.push((k.btf_id, index as i16));
    }
    // Entry 0 stays unused: a call's `off` 0 means vmlinux.
    let fd_array = match modules.is_empty() {
        true => Vec::new(),
        false => std::iter::once(0)
            .chain(modules.iter().map(|(_, fd)| fd.as_raw_fd()))
            .collect(),
    };
    Ok((
        refs,
        fd_array,
        modules.into_iter().map(|(_, fd)| fd).collect(),
    ))
}

/// Why a module's BTF fd could not be had. Without `CAP_SYS_ADMIN` the
/// kernel refuses `BPF_BTF_GET_NEXT_ID` and `BPF_BTF_GET_FD_BY_ID`
/// (`CAP_BPF` is not enough), so a kfunc in a module cannot be called.
fn module_btf_error(module: &str, e: std::io::Error) -> EbpfError {
    if e.raw_os_error() == Some(libc::EPERM) {
        return EbpfError::ModuleBtfDenied {
            module: module.into(),
        };
    }
    EbpfError::Sys {
        op: "BPF_BTF_GET_FD_BY_ID",
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.1.0-57-amd64\n"), Some((6, 1)));
        assert_eq!(parse_release("6.18.44-fc-v1252"), Some((6, 18)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(parse_release("6.10-rc1"), Some((6, 10)));
        assert_eq!(parse_release("junk"), None);
        assert!(check_release("6.1.0-57-amd64").is_ok());
        assert!(check_release("6.8.0-1-generic").is_ok());
        let old = check_release("5.15.0-91-generic").unwrap_err().to_string();
        assert!(old.contains("5.15.0-91-generic is older than 6.1"), "{old}");
        assert!(check_release("5.19.0").is_err());
    }

    #[test]
    fn the_running_kernel_resolves() {
        let (refs, fd_array, fds) = resolve().unwrap();
        assert_eq!(refs.len(), 2);
        assert!(refs.iter().all(|(id, _)| *id > 0));
        assert_eq!(fd_array.len(), fds.len() + usize::from(!fds.is_empty()));
    }

    #[test]
    fn kernel_btf_objects_are_found_by_name() {
        // How a module's BTF fd is found (BPF_BTF_GET_NEXT_ID, then each
        // object's name), tried on the one kernel BTF every kernel has.
        assert!(btf::module_fd("vmlinux").is_ok());
        let e = btf::module_fd("no_such_module").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }

    fn eperm_again() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EPERM)
    }

    #[test]
    fn without_cap_sys_admin_a_module_kfunc_is_unsupported() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let e = module_btf_error("nf_conntrack", eperm).to_string();
        assert!(
            e.contains("unsupported") && e.contains("CAP_SYS_ADMIN"),
            "{e}"
        );
        assert!(module_btf_error("nf_conntrack", eperm_again()).needs_cap_sys_admin());
        let other = module_btf_error("nf_conntrack", std::io::Error::other("x"));
        assert!(matches!(other, EbpfError::Sys { .. }));
    }
}
