//! Label and field selectors as the apiserver parses them.

use crate::kind::Kind;
use crate::obj::Obj;

/// Object labels.
pub use crate::obj::Labels;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_top(s) {
            let t = term.trim();
            if t.is_empty() {
                continue;
            }
            reqs.push(parse_req(t).ok_or_else(|| format!("unable to parse requirement: {t:?}"))?);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => labels.get(k) == Some(v),
            Req::Ne(k, v) => labels.get(k) != Some(v),
            Req::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Req::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Req::Exists(k) => labels.contains_key(k),
            Req::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn parse_req(t: &str) -> Option<Req> {
    if let Some(k) = t.strip_prefix('!') {
        let k = k.trim();
        return valid_key(k).then(|| Req::NotExists(k.to_string()));
    }
    for (op, ne) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = t.split_once(op) {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if !valid_key(&k) {
                return None;
            }
            return Some(if ne { Req::Ne(k, v) } else { Req::Eq(k, v) });
        }
    }
    let set = |rest: &str| -> Option<Vec<String>> {
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    if let Some((k, rest)) = t.split_once(" notin ") {
        let k = k.trim();
        return if valid_key(k) {
            Some(Req::NotIn(k.into(), set(rest)?))
        } else {
            None
        };
    }
    if let Some((k, rest)) = t.split_once(" in ") {
        let k = k.trim();
        return if valid_key(k) {
            Some(Req::In(k.into(), set(rest)?))
        } else {
            None
        };
    }
    valid_key(t).then(|| Req::Exists(t.to_string()))
}

/// A parsed `fieldSelector`: `metadata.name`, `metadata.namespace` and
/// the kind's own fields ([`Kind::selectable_fields`], e.g. a pod's
/// `spec.nodeName`), with `=`, `==` and `!=`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str, kind: Kind) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, ne, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, false, v)
            } else {
                return Err(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace")
                && !kind.selectable_fields().contains(&field)
            {
                return Err(format!(
                    "field label not supported: {field} (for {})",
                    kind.plural()
                ));
            }
            reqs.push((field.to_string(), ne, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    /// The single name this selector pins, if it is `metadata.name=X`.
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, ne, _)| f == "metadata.name" && !ne)
            .map(|(_, _, v)| v.as_str())
    }

    pub(crate) fn matches(&self, obj: &Obj) -> bool {
        self.0
            .iter()
            .all(|(field, ne, value)| (obj.field(field) == value) != *ne)
    }
}

/// What a list or watch request sees: one kind, maybe one namespace, and
/// both selectors.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Kind,
    /// `None`: every namespace (or a cluster-scoped kind).
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub(crate) fn matches(&self, obj: &Obj) -> bool {
        obj.kind == self.kind
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == obj.namespace)
            && self.fields.matches(obj)
            && self.labels.matches(&obj.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[
            ("role", "worker"),
            ("zone", "a"),
            ("kubernetes.io/os", "linux"),
        ]);
        let ok = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(ok(""));
        assert!(ok("role=worker"));
        assert!(ok("role==worker,zone"));
        assert!(!ok("role!=worker"));
        assert!(ok("zone in (a, b),kubernetes.io/os=linux"));
        assert!(!ok("zone notin (a,b)"));
        assert!(ok("!node-role.kubernetes.io/control-plane"));
        assert!(!ok("!zone"));
        assert!(ok("missing notin (x)"));
        assert!(LabelSelector::parse("a b").is_err());
    }

    fn pod(name: &str, node: &str) -> Obj {
        let v = serde_json::json!({"metadata": {"name": name, "namespace": "default"},
                                   "spec": {"nodeName": node}});
        Obj::from_value(Kind::Pod, &v, 1)
    }

    #[test]
    fn field_selectors() {
        let f = FieldSelector::parse("metadata.name=node-1", Kind::Node).unwrap();
        let node =
            |n: &str| Obj::from_value(Kind::Node, &serde_json::json!({"metadata": {"name": n}}), 1);
        assert!(f.matches(&node("node-1")));
        assert!(!f.matches(&node("node-2")));
        assert_eq!(f.exact_name(), Some("node-1"));
        assert!(FieldSelector::parse("metadata.name!=node-1", Kind::Node)
            .unwrap()
            .matches(&node("node-2")));
        assert!(FieldSelector::parse("spec.unknown=1", Kind::Node).is_err());
        assert!(FieldSelector::parse("spec.nodeName=a", Kind::Node).is_err());
        let f =
            FieldSelector::parse("spec.nodeName=n1,metadata.namespace=default", Kind::Pod).unwrap();
        assert!(f.matches(&pod("a", "n1")));
        assert!(!f.matches(&pod("a", "n2")));
        let f = Filter {
            kind: Kind::Pod,
            namespace: Some("other".into()),
            ..Filter::default()
        };
        assert!(!f.matches(&pod("a", "n1")));
    }
}
