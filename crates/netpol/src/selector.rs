//! Label selector matching (`matchLabels` + `matchExpressions`).

use crate::model::{LabelSelector, Labels, Operator, Requirement};

impl LabelSelector {
    /// The empty selector (`{}`): selects everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Whether `labels` satisfy every term of the selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no terms and so selects everything.
    pub fn is_everything(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

impl Requirement {
    /// Whether `labels` satisfy this requirement (Kubernetes semantics:
    /// `NotIn` holds for a missing key).
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;
