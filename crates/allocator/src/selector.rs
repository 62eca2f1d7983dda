//! Kubernetes label selectors (`matchLabels` + `matchExpressions`), evaluated without a client.

use std::collections::BTreeMap;

/// The operator of one `matchExpressions` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RequirementOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label is compared.
    pub operator: RequirementOperator,
    /// The values for `In` / `NotIn` (empty for `Exists` / `DoesNotExist`).
    pub values: Vec<String>,
}

/// A label selector. The empty selector matches everything, as in Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LabelSelector {
    /// `matchLabels`: every pair must be present.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`: every requirement must hold.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// The rule of every selector list in the `metallb.io` API (`nodeSelectors`,
    /// `serviceSelectors`, …): an empty list selects everything, otherwise an object is
    /// selected when any selector of the list matches its labels.
    pub fn list_selects(list: &[LabelSelector], labels: &BTreeMap<String, String>) -> bool {
        list.is_empty() || list.iter().any(|s| s.matches(labels))
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    RequirementOperator::In => value.is_some_and(|v| r.values.contains(v)),
                    RequirementOperator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                    RequirementOperator::Exists => value.is_some(),
                    RequirementOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}
