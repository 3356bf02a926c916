//! ADD with `fastPath`: the new host veth runs ferryd's pinned program and
//! is listed in its pod map before the pod can send; DEL takes it out. A
//! `fastPath` with nothing pinned changes nothing.

mod support;

use std::os::fd::AsFd;
use std::path::Path;

use ferry_netns::NetNs;
use support::{ping, Call, Node};

fn with_fast_path(conf: &str, dir: &Path) -> String {
    conf.replace(
        r#""mtu":1500"#,
        &format!(r#""mtu":1500,"fastPath":"{}""#, dir.display()),
    )
}

/// (ifindex, id of the program ferry's ingress filter runs) of `name`.
fn filter_of(node: &Node, name: &str) -> (u32, Option<u32>) {
    NetNs::open(&node.path)
        .unwrap()
        .run(|| {
            let mut h = ferry_netlink::Handle::new().unwrap();
            let link = h.link_by_name(name).unwrap().expect("host veth");
            (link.index, h.bpf_ingress_prog_id(link.index).unwrap())
        })
        .unwrap()
}

struct Pins(std::path::PathBuf);
impl Drop for Pins {
    fn drop(&mut self) {
        let _ = ferry_ebpf::unpin(&self.0);
    }
}

#[test]
fn add_attaches_the_pinned_program_and_del_unlists_the_veth() {
    let node = Node::new("fast");
    ferry_ebpf::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
    let pins = Pins(Path::new("/sys/fs/bpf").join(&node.name));
    let fp = ferry_ebpf::FastPath::load(&pins.0).expect("load the fast path");
    let id = fp.prog_id().unwrap();
    let conf = with_fast_path(&node.conf_v4("1.0.0"), &pins.0);
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);

    let add = node
        .ferry(&Call::new("ADD", "fast1", &netns, &conf))
        .expect_ok();
    let host = add.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (ifindex, prog) = filter_of(&node, &host);
    assert_eq!(prog, Some(id), "the host veth runs ferryd's program");
    assert_eq!(fp.pod_ifaces().list().unwrap(), vec![ifindex]);
    assert!(ping(&pod, "172.16.97.75"), "the pod still reaches its node");

    node.ferry(&Call::new("DEL", "fast1", &netns, &conf))
        .expect_ok();
    assert!(
        fp.pod_ifaces().list().unwrap().is_empty(),
        "DEL unlists the veth"
    );
    node.ferry(&Call::new("DEL", "fast1", &netns, &conf))
        .expect_ok();
    // The program is still pinned and attachable: it belongs to ferryd.
    let pinned = ferry_ebpf::open_prog(&pins.0)
        .unwrap()
        .expect("still pinned");
    assert_eq!(ferry_ebpf::prog_id(pinned.as_fd()).unwrap(), id);
}

#[test]
fn nothing_pinned_means_no_filter_and_no_error() {
    let node = Node::new("nofast");
    let dir = Path::new("/sys/fs/bpf").join(format!("{}-none", node.name));
    let conf = with_fast_path(&node.conf_v4("1.0.0"), &dir);
    let pod = node.pod("p");
    let netns = Node::pod_path(&pod);
    let add = node
        .ferry(&Call::new("ADD", "nofast1", &netns, &conf))
        .expect_ok();
    let host = add.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(filter_of(&node, &host).1, None);
    assert!(!dir.exists(), "the plugin never creates pins");
    node.ferry(&Call::new("DEL", "nofast1", &netns, &conf))
        .expect_ok();
}

#[test]
fn gc_unlists_the_veths_it_removes() {
    let node = Node::new("fastgc");
    ferry_ebpf::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
    let pins = Pins(Path::new("/sys/fs/bpf").join(&node.name));
    let fp = ferry_ebpf::FastPath::load(&pins.0).expect("load the fast path");
    let conf = with_fast_path(&node.conf_v4("1.1.0"), &pins.0);
    let mut kept = None;
    for i in 0..2 {
        let pod = node.pod(&format!("p{i}"));
        let add = node
            .ferry(&Call::new(
                "ADD",
                &format!("fgc{i}"),
                &Node::pod_path(&pod),
                &conf,
            ))
            .expect_ok();
        if i == 1 {
            let host = add.json["interfaces"][0]["name"]
                .as_str()
                .unwrap()
                .to_string();
            kept = Some(filter_of(&node, &host).0);
        }
    }
    assert_eq!(fp.pod_ifaces().list().unwrap().len(), 2);
    let mut gc: serde_json::Value = serde_json::from_str(&conf).unwrap();
    gc["cni.dev/valid-attachments"] =
        serde_json::json!([{"containerID": "fgc1", "ifname": "eth0"}]);
    node.ferry(&Call::new("GC", "", "", &gc.to_string()))
        .expect_ok();
    assert_eq!(fp.pod_ifaces().list().unwrap(), vec![kept.unwrap()]);
}
