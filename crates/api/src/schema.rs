//! Field-level schema adjustments, used as `#[schemars(transform = ...)]` on the types, so the
//! generated CRDs carry what MetalLB's carry (controller-gen's reading of MetalLB's Go types
//! and of the Kubernetes types they embed) where schemars, reading the Rust types, says
//! something else:
//!
//! ```text
//!   Rust type / embedded type       schemars says             MetalLB's CRD says
//!   u32 (Go uint32)                 format uint32             format int32 (int64 for ASNs)
//!   u8 / u16 / i64 (Go uint8,       format uint8 / uint16 /   no format
//!     uint16, int)                    int64
//!   metav1.LabelSelector            -                         map-type / list-type atomic
//!   metav1.Condition                -                         enum, pattern, length limits
//! ```
//!
//! The list markers matter beyond looks: server-side apply merges an atomic selector as one
//! value (a re-applied selector replaces the old one instead of merging two).

use schemars::Schema;
use serde_json::{Value, json};

/// `format: int32`, what controller-gen writes for a Go `int32` or `uint32` field.
pub(crate) fn int32(schema: &mut Schema) {
    schema.insert("format".into(), json!("int32"));
}

/// `format: int64` (MetalLB marks its AS numbers so, to hold all of 0..=4294967295).
pub(crate) fn int64(schema: &mut Schema) {
    schema.insert("format".into(), json!("int64"));
}

/// No `format`: controller-gen writes none for Go `int`, `uint8` and `uint16` fields.
pub(crate) fn no_format(schema: &mut Schema) {
    schema.remove("format");
}

/// The markers of `metav1.LabelSelector` (`+structType=atomic`, `+listType=atomic` on
/// `matchExpressions` and on each expression's `values`), on a selector or a list of them.
pub(crate) fn label_selectors(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        mark_label_selector(obj);
    }
}

fn mark_label_selector(obj: &mut serde_json::Map<String, Value>) {
    if let Some(items) = obj.get_mut("items").and_then(Value::as_object_mut) {
        mark_label_selector(items);
        return;
    }
    obj.insert("x-kubernetes-map-type".into(), json!("atomic"));
    let expressions = obj
        .get_mut("properties")
        .and_then(|p| p.get_mut("matchExpressions"))
        .and_then(Value::as_object_mut);
    if let Some(expressions) = expressions {
        expressions.insert("x-kubernetes-list-type".into(), json!("atomic"));
        let values = expressions
            .get_mut("items")
            .and_then(|i| i.get_mut("properties"))
            .and_then(|p| p.get_mut("values"))
            .and_then(Value::as_object_mut);
        if let Some(values) = values {
            values.insert("x-kubernetes-list-type".into(), json!("atomic"));
        }
    }
}

/// The validation markers of `metav1.Condition` on a list of conditions: the limits every
/// Kubernetes API that embeds it enforces (`status` one of True / False / Unknown, `type` a
/// qualified name, `reason` CamelCase, bounded lengths).
pub(crate) fn conditions(schema: &mut Schema) {
    let properties = schema
        .get_mut("items")
        .and_then(|i| i.get_mut("properties"))
        .and_then(Value::as_object_mut);
    let Some(properties) = properties else {
        return;
    };
    let limits = [
        ("message", json!({"maxLength": 32768})),
        ("observedGeneration", json!({"minimum": 0})),
        (
            "reason",
            json!({
                "maxLength": 1024,
                "minLength": 1,
                "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            }),
        ),
        ("status", json!({"enum": ["True", "False", "Unknown"]})),
        (
            "type",
            json!({
                "maxLength": 316,
                "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            }),
        ),
    ];
    for (field, extra) in limits {
        let target = properties.get_mut(field).and_then(Value::as_object_mut);
        if let (Some(target), Value::Object(extra)) = (target, extra) {
            target.extend(extra);
        }
    }
}

/// Removes `nullable: true` everywhere: MetalLB's schemas have none, so a `null` sent for an
/// optional field is pruned (and defaulted) by the API server rather than stored.
pub(crate) fn remove_nullable(schema: &mut Schema) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("nullable");
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.values_mut().for_each(walk);
        obj.remove("nullable");
    }
}
