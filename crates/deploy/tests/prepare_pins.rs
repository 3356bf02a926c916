//! `prepare` loads the eBPF fast path and pins it where ferryd looks for
//! it: both containers must name the same pin directory, spelled out in
//! each (a setting changed on one alone would leave ferryd without the
//! pin, and unable to load the program where `nf_conntrack` is a module).

mod common;

use std::path::Path;

use common::*;

#[test]
fn prepare_pins_the_fast_path_where_ferryd_looks() {
    let mut seen = 0;
    for (file, objects) in checked_in() {
        for ds in daemonsets(&objects) {
            let spec = pod(ds);
            let all = containers(spec);
            let Some(prepare) = all.iter().find(|c| c.name == "prepare") else {
                continue;
            };
            seen += 1;
            let agents: Vec<_> = all
                .iter()
                .filter(|c| runs_ferryd(c) && c.name != "prepare")
                .collect();
            assert!(agents.iter().any(|c| c.name == "ferryd"), "{file}");
            for agent in agents {
                for (long, env) in [
                    ("fast-path", "FERRY_FAST_PATH"),
                    ("bpf-dir", "FERRY_BPF_DIR"),
                ] {
                    let name = &agent.name;
                    assert_eq!(
                        effective(prepare, long),
                        effective(agent, long),
                        "{file}: --{long} of prepare and {name}"
                    );
                    assert!(env_value(prepare, env).is_some(), "{file}: {env}");
                    assert_eq!(
                        env_value(prepare, env),
                        env_value(agent, env),
                        "{file}: {env} of prepare and {name}"
                    );
                }
            }
            assert_eq!(effective(prepare, "fast-path").as_deref(), Some("true"));
            // Below the one host path prepare mounts (the bpf file system).
            let dir = effective(prepare, "bpf-dir").unwrap();
            let mounts = prepare.volume_mounts.clone().unwrap_or_default();
            assert_eq!(mounts.len(), 1, "{file}");
            assert_eq!(mounts[0].mount_path, ferry_deploy::BPF_FS, "{file}");
            assert!(
                Path::new(&dir).starts_with(ferry_deploy::BPF_FS) && dir != ferry_deploy::BPF_FS,
                "{file}: prepare's --bpf-dir {dir} is below its bpf file system"
            );
        }
    }
    assert_eq!(
        seen, 4,
        "direct, direct with WireGuard, ospf and bgp each have prepare"
    );
}
