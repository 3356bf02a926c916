//! Stable nft names for chains, sets and counters.
//!
//! Kubernetes names use `[a-z0-9.-]`, all valid in nft identifiers, as is
//! `/`; the only thing to guard is length (nft allows 255 bytes).

/// Longest chain name we make; set names add at most ~16 bytes.
const MAX_CHAIN: usize = 200;

/// FNV-1a, 64 bits: stable across runs and Rust versions.
pub fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `dir/ns/name`, shortened with a hash when too long.
pub fn policy_chain(dir: &str, namespace: &str, name: &str) -> String {
    let full = format!("{dir}/{namespace}/{name}");
    if full.len() <= MAX_CHAIN {
        return full;
    }
    let mut cut = MAX_CHAIN - 9;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}.{:08x}", &full[..cut], fnv64(&full) as u32)
}

/// The group chain of a set of policy chains (sorted): `dir-grp-<hash>`.
pub fn group_chain(dir: &str, policy_chains: &[String]) -> String {
    format!("{dir}-grp-{:08x}", fnv64(&policy_chains.join(",")) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_long_ones_hashed() {
        assert_eq!(policy_chain("in", "default", "web"), "in/default/web");
        let long = "x".repeat(253);
        let a = policy_chain("in", "default", &long);
        assert_eq!(a.len(), MAX_CHAIN);
        assert_ne!(a, policy_chain("eg", "default", &long));
        assert_eq!(a, policy_chain("in", "default", &long));
    }

    #[test]
    fn group_names_are_stable() {
        let g = group_chain("in", &["in/a/b".into(), "in/a/c".into()]);
        assert_eq!(g, group_chain("in", &["in/a/b".into(), "in/a/c".into()]));
        assert_ne!(g, group_chain("in", &["in/a/b".into()]));
        assert!(g.starts_with("in-grp-") && g.len() == 15);
    }
}
