//! Kubernetes `LabelSelector`s -> [`ironlb_allocator::LabelSelector`], rejecting invalid ones.

use ironlb_allocator::{LabelSelector, Requirement, RequirementOperator};

/// Why a label key or value is invalid, or `None`.
fn label_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 63 {
        return Some(format!("{name:?} must be 1-63 characters"));
    }
    let ok_inner = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!(ok_inner && ends_ok)).then(|| {
        format!("{name:?} must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric")
    })
}

fn dns_subdomain_problem(prefix: &str) -> Option<String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 253
        && prefix.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    (!ok).then(|| format!("prefix {prefix:?} must be a DNS subdomain"))
}

/// Why `key` is not a valid label key (`[prefix/]name`), or `None`.
pub(crate) fn label_key_problem(key: &str) -> Option<String> {
    match key.split_once('/') {
        Some((prefix, name)) => dns_subdomain_problem(prefix).or_else(|| label_name_problem(name)),
        None => label_name_problem(key),
    }
}

/// Why `value` is not a valid label value (may be empty), or `None`.
pub(crate) fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        None
    } else {
        label_name_problem(value)
    }
}

/// Converts and validates one selector; errors are `(field suffix, message)`.
pub(crate) fn convert(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<LabelSelector, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut out = LabelSelector::default();
    for (k, v) in sel.match_labels.iter().flatten() {
        if let Some(p) = label_key_problem(k) {
            problems.push((
                format!(".matchLabels[{k:?}]"),
                format!("invalid label key: {p}"),
            ));
        }
        if let Some(p) = label_value_problem(v) {
            problems.push((
                format!(".matchLabels[{k:?}]"),
                format!("invalid label value: {p}"),
            ));
        }
        out.match_labels.insert(k.clone(), v.clone());
    }
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let field = format!(".matchExpressions[{i}]");
        if let Some(p) = label_key_problem(&e.key) {
            problems.push((format!("{field}.key"), format!("invalid label key: {p}")));
        }
        let values = e.values.clone().unwrap_or_default();
        let operator = match e.operator.as_str() {
            "In" => Some(RequirementOperator::In),
            "NotIn" => Some(RequirementOperator::NotIn),
            "Exists" => Some(RequirementOperator::Exists),
            "DoesNotExist" => Some(RequirementOperator::DoesNotExist),
            other => {
                problems.push((
                    format!("{field}.operator"),
                    format!("{other:?} is not a valid operator (In, NotIn, Exists, DoesNotExist)"),
                ));
                None
            }
        };
        match operator {
            Some(RequirementOperator::In | RequirementOperator::NotIn) if values.is_empty() => {
                problems.push((
                    format!("{field}.values"),
                    format!("operator {} needs at least one value", e.operator),
                ));
            }
            Some(RequirementOperator::Exists | RequirementOperator::DoesNotExist)
                if !values.is_empty() =>
            {
                problems.push((
                    format!("{field}.values"),
                    format!("operator {} takes no values", e.operator),
                ));
            }
            _ => {}
        }
        for v in &values {
            if let Some(p) = label_value_problem(v) {
                problems.push((
                    format!("{field}.values"),
                    format!("invalid label value: {p}"),
                ));
            }
        }
        if let Some(operator) = operator {
            // Sorted, so that selectors are compared as MetalLB compares them (the order of
            // values never changes what a requirement matches).
            let mut values = values;
            values.sort();
            out.match_expressions.push(Requirement {
                key: e.key.clone(),
                operator,
                values,
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// What MetalLB refuses in a selector of a list (`nodeSelectors`, `serviceSelectors`, ...)
/// beyond validity: a match expression that repeats a value, and a match expression repeated
/// (values compared sorted). Errors are `(field suffix, message)`.
pub(crate) fn duplicate_problems(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut seen: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let values = e.values.as_deref().unwrap_or_default();
        for (j, v) in values.iter().enumerate() {
            if values[..j].contains(v) {
                problems.push((
                    format!(".matchExpressions[{i}].values[{j}]"),
                    format!("duplicate value {v:?} in a match expression"),
                ));
            }
        }
        let mut sorted: Vec<&str> = values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let this = (e.key.as_str(), e.operator.as_str(), sorted);
        if let Some(first) = seen.iter().position(|s| *s == this) {
            problems.push((
                format!(".matchExpressions[{i}]"),
                format!("duplicate match expression (the same as matchExpressions[{first}])"),
            ));
        }
        seen.push(this);
    }
    problems
}
