//! VERSION, and the verbs' version gates, as a runtime sees them.

mod support;

use support::{Call, Node, FERRY, FERRY_IPAM};

#[test]
fn version_lists_every_supported_version() {
    let node = Node::new("ver");
    for binary in [FERRY, FERRY_IPAM] {
        for (stdin, answer) in [
            (r#"{"cniVersion":"0.4.0"}"#, "0.4.0"),
            (r#"{"cniVersion":"1.1.0"}"#, "1.1.0"),
            ("", "1.1.0"),
        ] {
            let mut call = Call::new("VERSION", "", "", stdin);
            call.path.clear();
            let reply = node.run(binary, &call).expect_ok();
            assert_eq!(reply.json["cniVersion"], answer, "{}", reply.raw);
            assert_eq!(
                reply.json["supportedVersions"],
                serde_json::json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
            );
        }
    }
}

#[test]
fn verbs_are_gated_by_the_config_version() {
    let node = Node::new("gate");
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let old = node.conf_v4("1.0.0");
    for verb in ["GC", "STATUS"] {
        let reply = node.ferry(&Call::new(verb, "", "", &old));
        assert_eq!(reply.code(), 1, "{verb} with 1.0.0: {}", reply.raw);
        assert_eq!(
            reply.json["cniVersion"], "1.0.0",
            "errors answer in the asked version"
        );
    }
    let check = node.ferry(&Call::new("CHECK", "g1", &netns, &node.conf_v4("0.3.1")));
    assert_eq!(check.code(), 1);
    let no_prev = node.ferry(&Call::new("CHECK", "g1", &netns, &node.conf_v4("1.1.0")));
    assert_eq!(
        no_prev.code(),
        7,
        "CHECK without prevResult: {}",
        no_prev.raw
    );
}

#[test]
fn logs_go_to_the_log_file_never_stdout() {
    let node = Node::new("log");
    let pod = node.pod("p");
    let log = std::env::temp_dir().join(format!("{}.log", node.name));
    let conf = node.conf_v4("1.1.0").replace(
        r#""mtu":1500,"#,
        &format!(
            r#""mtu":1500,"logFile":"{}","logLevel":"debug","#,
            log.display()
        ),
    );
    let add = node
        .ferry(&Call::new("ADD", "log1", &Node::pod_path(&pod), &conf))
        .expect_ok();
    assert!(add.json.is_object(), "stdout holds only the result");
    node.ferry(&Call::new("DEL", "log1", "", &conf)).expect_ok();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("ADD log1/eth0"), "{text}");
    assert!(text.contains("DEL log1/eth0"), "{text}");
}
