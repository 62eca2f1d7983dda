//! ironlb's generated CRDs compared with MetalLB v0.16.2's, structurally: the same kinds, names,
//! versions and printer columns, and at every node of every schema the same properties, types,
//! formats, enums, bounds, patterns, defaults, required fields, list / map markers and CEL rules.
//! Descriptions may differ, and so may the messages of CEL rules (only the rules are compared).
//!
//! MetalLB's CRDs are read from its own Go module (`config/crd/bases`), at the version pinned
//! in `tools/metallb/version`, fetched through the Go module proxy by `tools/metallb/fetch.sh`
//! (nothing of it is copied into this repository).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

/// MetalLB's `config/crd/bases` directory in its module.
fn oracle_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        ironlb_lab::components::tool_path("tools/metallb/fetch.sh")
            .expect("MetalLB's module is fetched")
            .join("config/crd/bases")
    })
}

/// Schema keys not compared literally: prose, and the keys walked into or compared as sets.
const NOT_LITERAL: &[&str] = &[
    "description",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "x-kubernetes-validations",
];

/// Where ironlb's schema differs from MetalLB's on purpose (the start of the difference's line,
/// and why). Each must still be found: a stale entry fails the test too.
const DELIBERATE: &[(&str, &str)] = &[(
    "metallb.io_bgpadvertisements.yaml v1beta1.spec.localPref: minimum:",
    "MetalLB's field is a Go uint32 whose schema (format int32, no bounds) admits negative \
     numbers that neither MetalLB nor ironlb can then read; ironlb's API server refuses them",
)];

/// MetalLB's CRD of `file`, from its module.
fn metallb_crd(file: &str) -> Value {
    let path = oracle_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MetalLB's CRD)", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// ironlb's CRDs as shipped (the YAML `crdgen` writes, read back), by file name.
fn ironlb_crds() -> Vec<(String, Value)> {
    ironlb_api::crd::all()
        .into_iter()
        .map(|(file, crd)| {
            let text = ironlb_api::crd::to_yaml_body(&crd).expect("CRD renders as YAML");
            (
                file,
                serde_yaml::from_str(&text).expect("CRD YAML reads back"),
            )
        })
        .collect()
}

/// The differences found, and how many schema nodes were compared.
#[derive(Default)]
struct Diff {
    found: Vec<String>,
    nodes: usize,
}

impl Diff {
    fn note(&mut self, at: &str, what: &str, ours: Option<&Value>, theirs: Option<&Value>) {
        let show = |v: Option<&Value>| v.map_or_else(|| "(none)".to_string(), Value::to_string);
        self.found.push(format!(
            "{at}: {what}: ironlb {} / MetalLB {}",
            show(ours),
            show(theirs)
        ));
    }

    /// Compares two schema nodes and everything under them.
    fn schema(&mut self, at: &str, ours: &Value, theirs: &Value) {
        self.nodes += 1;
        let (Some(o), Some(t)) = (ours.as_object(), theirs.as_object()) else {
            if ours != theirs {
                self.note(at, "schema", Some(ours), Some(theirs));
            }
            return;
        };
        let keys: BTreeSet<&String> = o.keys().chain(t.keys()).collect();
        for key in keys {
            if NOT_LITERAL.contains(&key.as_str()) {
                continue;
            }
            if o.get(key) != t.get(key) {
                self.note(at, key, o.get(key), t.get(key));
            }
        }
        let required = |v: &serde_json::Map<String, Value>| -> BTreeSet<String> {
            v.get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        };
        if required(o) != required(t) {
            self.note(at, "required", o.get("required"), t.get("required"));
        }
        let rules = |v: &serde_json::Map<String, Value>| -> Vec<Value> {
            v.get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| r["rule"].clone())
                .collect()
        };
        if rules(o) != rules(t) {
            self.note(
                at,
                "x-kubernetes-validations rules",
                Some(&Value::Array(rules(o))),
                Some(&Value::Array(rules(t))),
            );
        }
        let empty = serde_json::Map::new();
        let props = |v: &serde_json::Map<String, Value>| {
            v.get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_else(|| empty.clone())
        };
        let (op, tp) = (props(o), props(t));
        for name in op.keys().chain(tp.keys()).collect::<BTreeSet<_>>() {
            let child = format!("{at}.{name}");
            match (op.get(name), tp.get(name)) {
                (Some(a), Some(b)) => self.schema(&child, a, b),
                (a, b) => self.note(
                    &child,
                    "property",
                    a.map(|_| &Value::Bool(true)),
                    b.map(|_| &Value::Bool(true)),
                ),
            }
        }
        for (key, suffix) in [("items", "[]"), ("additionalProperties", "{}")] {
            match (o.get(key), t.get(key)) {
                (Some(a), Some(b)) => self.schema(&format!("{at}{suffix}"), a, b),
                (None, None) => {}
                (a, b) => self.note(at, key, a, b),
            }
        }
    }

    /// Compares two CRDs: names, scope, versions (flags, printer columns, sub-resources and
    /// schema).
    fn crd(&mut self, file: &str, ours: &Value, theirs: &Value) {
        for key in ["group", "names", "scope"] {
            if ours["spec"][key] != theirs["spec"][key] {
                self.note(
                    file,
                    key,
                    Some(&ours["spec"][key]),
                    Some(&theirs["spec"][key]),
                );
            }
        }
        let versions = |crd: &Value| -> Vec<Value> {
            crd["spec"]["versions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let (ov, tv) = (versions(ours), versions(theirs));
        let names = |vs: &[Value]| -> Vec<Value> { vs.iter().map(|v| v["name"].clone()).collect() };
        if names(&ov) != names(&tv) {
            self.note(
                file,
                "versions",
                Some(&Value::Array(names(&ov))),
                Some(&Value::Array(names(&tv))),
            );
        }
        for t in &tv {
            let Some(o) = ov.iter().find(|o| o["name"] == t["name"]) else {
                continue;
            };
            let at = format!("{file} {}", t["name"].as_str().unwrap_or("?"));
            for key in ["served", "storage", "deprecated", "subresources"] {
                if o.get(key) != t.get(key) {
                    self.note(&at, key, o.get(key), t.get(key));
                }
            }
            let columns = |v: &Value| -> Vec<Value> {
                v["additionalPrinterColumns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let mut c = c.clone();
                        if let Some(c) = c.as_object_mut() {
                            c.remove("description");
                        }
                        c
                    })
                    .collect()
            };
            if columns(o) != columns(t) {
                self.note(
                    &at,
                    "additionalPrinterColumns",
                    Some(&Value::Array(columns(o))),
                    Some(&Value::Array(columns(t))),
                );
            }
            self.schema(
                &at,
                &o["schema"]["openAPIV3Schema"],
                &t["schema"]["openAPIV3Schema"],
            );
        }
    }
}

#[test]
fn generated_crds_match_metallb_v0_16_2_structurally() {
    let ours = ironlb_crds();
    let mut oracle_files: Vec<String> = std::fs::read_dir(oracle_dir())
        .expect("MetalLB's CRDs")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    oracle_files.sort();
    let mut our_files: Vec<String> = ours.iter().map(|(f, _)| f.clone()).collect();
    our_files.sort();
    assert_eq!(
        our_files, oracle_files,
        "the same CRDs, in files of the same names"
    );

    let mut diff = Diff::default();
    for (file, crd) in &ours {
        diff.crd(file, crd, &metallb_crd(file));
    }
    // A walk that compared (almost) nothing would pass vacuously.
    assert!(
        diff.nodes > 200,
        "only {} schema nodes compared",
        diff.nodes
    );
    for (start, why) in DELIBERATE {
        let before = diff.found.len();
        diff.found.retain(|d| !d.starts_with(start));
        assert!(
            diff.found.len() < before,
            "the deliberate difference {start:?} ({why}) is gone: remove it from DELIBERATE"
        );
    }
    assert!(
        diff.found.is_empty(),
        "{} differences from MetalLB v0.16.2 (fix the types in crates/api, then run \
         `cargo run -p ironlb-api --bin crdgen`):\n{}",
        diff.found.len(),
        diff.found.join("\n")
    );
}

#[test]
fn the_comparison_sees_a_changed_format_a_missing_rule_and_a_missing_field() {
    let (file, ours) = ironlb_crds()
        .into_iter()
        .find(|(f, _)| f == "metallb.io_bgppeers.yaml")
        .expect("bgppeers");
    let theirs = metallb_crd(&file);
    let mut changed = ours.clone();
    let spec =
        &mut changed["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    spec["properties"]["myASN"]["format"] = Value::from("uint32");
    spec["properties"]["connectTime"]
        .as_object_mut()
        .expect("connectTime")
        .remove("x-kubernetes-validations");
    spec["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("vrf");
    let mut diff = Diff::default();
    diff.crd(&file, &changed, &theirs);
    let all = diff.found.join("\n");
    for needle in [
        "v1beta2.spec.myASN: format",
        "v1beta2.spec.connectTime: x-kubernetes-validations rules",
        "v1beta2.spec.vrf: property",
    ] {
        assert!(all.contains(needle), "missed {needle:?} in:\n{all}");
    }
}
