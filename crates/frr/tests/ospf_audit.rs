//! The OSPF external-LSA audit against real FRR (OSPFv2 and OSPFv3): a
//! node whose ospfd/ospf6d stopped advertising its pod CIDRs (here by
//! drift: `no redistribute static` behind ferry's back) is found, and the
//! redistribution toggle makes the neighbour learn them again.

mod common;

use std::time::{Duration, Instant};

use common::{wait_until, Lab};
use ferry_frr::{ExternalAudit, Mode};

const CONVERGE: Duration = Duration::from_secs(60);

#[test]
fn ospf_external_audit_finds_and_restores_lost_lsas() {
    let mut lab = Lab::new("oq", 2, 0);
    let specs: Vec<_> = (0..2).map(|i| lab.spec_dual_stack(i, Mode::Ospf)).collect();
    lab.start_frr(&specs[0].daemons());
    lab.apply_all(&specs);
    let (cidr4, cidr6) = (lab.nodes[0].pod_cidr(), lab.nodes[0].pod_cidr6());
    let n1_has = |lab: &Lab, v6: bool| {
        let cidr = if v6 { &cidr6 } else { &cidr4 };
        lab.nodes[1].routes("ospf", v6).contains_key(cidr)
    };
    let both = |lab: &Lab| n1_has(lab, false) && n1_has(lab, true);
    assert!(
        wait_until(CONVERGE, || both(&lab)).is_some(),
        "n1 did not learn n0's pod CIDRs\n{}",
        lab.frr[0].logs()
    );

    // Nothing missing, on either node, in either family.
    for (i, spec) in specs.iter().enumerate() {
        let audit = lab.frr[i].frr.external_audit(spec).unwrap();
        assert_eq!(audit, ExternalAudit::default(), "n{i}");
    }

    // Drift: both redistributions withdrawn behind ferry's back.
    let vtysh = &lab.frr[0].frr;
    for router in ["router ospf", "router ospf6"] {
        vtysh
            .vtysh_config(&["configure terminal", router, "no redistribute static"])
            .unwrap();
    }
    assert!(
        wait_until(CONVERGE, || !n1_has(&lab, false) && !n1_has(&lab, true)).is_some(),
        "n1 kept n0's routes"
    );
    let audit = vtysh.external_audit(&specs[0]).unwrap();
    assert_eq!(
        audit,
        ExternalAudit {
            missing_v4: vec![cidr4.parse().unwrap()],
            missing_v6: vec![cidr6.parse().unwrap()],
        }
    );

    let t = Instant::now();
    for v6 in [false, true] {
        vtysh.reapply_redistribution(&specs[0], v6).unwrap();
    }
    let took = wait_until(CONVERGE, || both(&lab));
    assert!(took.is_some(), "n1 did not learn n0's pod CIDRs again");
    println!(
        "OSPF audit: toggle took {:?}; n1 had both routes {:?} after it began",
        t.elapsed(),
        took.unwrap()
    );
    assert!(vtysh.external_audit(&specs[0]).unwrap().is_empty());
    // The toggle leaves the config as ferry rendered it.
    assert!(!lab.apply(0, &specs[0]).changed);
}
