//! The install guide (`docs/install.md`) and the manifests'
//! headers tell users what they must do themselves.

mod common;

use common::read;
use ferry_deploy::{manifests, Images, Routing};

#[test]
fn secrets_come_from_the_user_and_the_docs_say_how() {
    let doc = read("../docs/install.md");
    for (routing, (secret, key)) in [
        (Routing::Ospf, ferry_deploy::OSPF_SECRET),
        (Routing::Bgp, ferry_deploy::BGP_SECRET),
    ] {
        let m = ferry_deploy::install(routing, &Images::default());
        let text = m.render();
        let command =
            format!("kubectl -n kube-system create secret generic {secret} --from-literal={key}=");
        assert!(
            text.contains(&command),
            "{}: header shows {command}",
            m.file
        );
        assert!(doc.contains(&command), "docs/install.md shows {command}");
        assert!(!text.contains("kind: Secret"));
    }
    for m in manifests(&Images::default()) {
        assert!(
            doc.contains(&format!("deploy/{}", m.file)),
            "docs/install.md names {}",
            m.file
        );
    }
    for needle in [
        "ferryd status",
        "rollout status",
        "--target ferry-frr",
        "buildah",
        "/metrics",
        "ferryd prepare",
        ferryd::FORWARDING_OFF_REASON,
        "1.20.2",
    ] {
        assert!(doc.contains(needle), "docs/install.md mentions {needle}");
    }
}
