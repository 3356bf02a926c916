use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
    Requirement {
        key: key.into(),
        operator,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn empty_selector_selects_everything() {
    let s = LabelSelector::everything();
    assert!(s.is_everything());
    assert!(s.matches(&labels(&[])));
    assert!(s.matches(&labels(&[("app", "web")])));
}

#[test]
fn match_labels_all_must_hold() {
    let s = LabelSelector {
        match_labels: labels(&[("app", "web"), ("tier", "fe")]),
        ..Default::default()
    };
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
    assert!(!s.matches(&labels(&[("app", "web")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "be")])));
}

#[test]
fn operators() {
    let l = labels(&[("env", "prod")]);
    let none = labels(&[]);
    assert!(req("env", Operator::In, &["prod", "stage"]).matches(&l));
    assert!(!req("env", Operator::In, &["dev"]).matches(&l));
    assert!(!req("env", Operator::In, &["prod"]).matches(&none));
    assert!(!req("env", Operator::NotIn, &["prod"]).matches(&l));
    assert!(req("env", Operator::NotIn, &["dev"]).matches(&l));
    assert!(req("env", Operator::NotIn, &["prod"]).matches(&none));
    assert!(req("env", Operator::Exists, &[]).matches(&l));
    assert!(!req("env", Operator::Exists, &[]).matches(&none));
    assert!(!req("env", Operator::DoesNotExist, &[]).matches(&l));
    assert!(req("env", Operator::DoesNotExist, &[]).matches(&none));
}

#[test]
fn labels_and_expressions_combine_with_and() {
    let s = LabelSelector {
        match_labels: labels(&[("app", "db")]),
        match_expressions: vec![req("env", Operator::In, &["prod"])],
    };
    assert!(s.matches(&labels(&[("app", "db"), ("env", "prod")])));
    assert!(!s.matches(&labels(&[("app", "db"), ("env", "dev")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod")])));
}
