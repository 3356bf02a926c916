//! Each scenario's rendered table against tests/golden/<name>.nft.
//! `FERRY_NETPOL_UPDATE_GOLDEN=1 cargo test -p ferry-netpol --test golden`
//! rewrites the files.

mod scenarios;

use std::path::PathBuf;

#[test]
fn goldens() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("FERRY_NETPOL_UPDATE_GOLDEN").is_some();
    let mut failed = Vec::new();
    for (name, policies) in scenarios::all() {
        let got = scenarios::rendered(&policies);
        let path = dir.join(format!("{name}.nft"));
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (set FERRY_NETPOL_UPDATE_GOLDEN=1)", path.display())
        });
        if got != want {
            eprintln!(
                "--- {name}: want {}\n{want}\n--- got\n{got}",
                path.display()
            );
            failed.push(name);
        }
    }
    let name = scenarios::DROP_LOG_SCENARIO;
    let got = ferry_netpol::render(&scenarios::with_drop_log(name));
    let path = dir.join(format!("{name}.drop_log.nft"));
    if update {
        std::fs::write(&path, &got).unwrap();
    } else if std::fs::read_to_string(&path).ok().as_deref() != Some(got.as_str()) {
        eprintln!(
            "--- {name} with drop log: want {}\n--- got\n{got}",
            path.display()
        );
        failed.push("drop_log");
    }
    assert!(failed.is_empty(), "goldens differ: {failed:?}");
}
