//! JSON Schemas of conntrack-kit's JSON outputs (feature `schema`).
//!
//! The schemas are generated from the Rust types (`schemars`), so they say
//! what the types serialise, field by field, with the types' documentation
//! as descriptions. Every schema of the family is made with
//! [`document`]: JSON Schema draft 2020-12, the *serialised* form (a field
//! left out when empty is not required; one always written is), every
//! object closed (`additionalProperties: false`), so that a field added to
//! a type without a schema update fails validation instead of slipping
//! through, and what a top-level document carries: `$id`, title and
//! description. The schemas are committed in the repository's
//! `schemas/` directory, and a test of the root package fails when they and
//! the types drift apart.
//!
//! This module has the schema of a [`Comparison`] ([`compare`]);
//! `conntrack_tune::schema` has those of the report and the plan.
//!
//! ```
//! let s = conntrack_analyze::schema::compare();
//! assert_eq!(s.get("$id").unwrap(), "urn:conntrack-kit:compare:v1");
//! assert_eq!(s.get("additionalProperties").unwrap(), false);
//! ```

use crate::compare::{COMPARE_SCHEMA, COMPARE_SCHEMA_VERSION, Comparison};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

/// The schema of a top-level document of type `T`, made like every
/// conntrack-kit schema: draft 2020-12, the serialised form, objects
/// closed, descriptions in plain prose (doc examples and link syntax left
/// out). `$id` is `urn:<schema id with ':' for '/'>:v<version>` (the
/// document's `schema` and `version` fields).
pub fn document<T: JsonSchema>(
    schema_id: &str,
    version: u32,
    title: &str,
    description: &str,
) -> Schema {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut s = generator.into_root_schema_for::<T>().to_value();
    let id = format!("urn:{}:v{version}", schema_id.replace('/', ":"));
    s["$id"] = id.into();
    s["title"] = title.into();
    s["description"] = description.into();
    tidy(&mut s, true);
    Schema::try_from(s).expect("a root schema is an object")
}

/// The schema of `compare --json`: a [`Comparison`].
pub fn compare() -> Schema {
    document::<Comparison>(
        COMPARE_SCHEMA,
        COMPARE_SCHEMA_VERSION,
        "conntrack-kit comparison",
        "Two conntrack observations side by side (two hosts, or one host before and after a \
         change): rows of configuration, table, rates, flows and top keys, each with a stable \
         key, and the differences that matter in words. Written by the compare example's \
         --json and by serialising conntrack_analyze::compare::Comparison.",
    )
}

/// Keywords whose value is one schema.
const ONE: [&str; 7] = [
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
];
/// Keywords whose value maps names to schemas.
const MAP: [&str; 4] = [
    "properties",
    "$defs",
    "patternProperties",
    "dependentSchemas",
];
/// Keywords whose value is a list of schemas.
const LIST: [&str; 4] = ["prefixItems", "oneOf", "anyOf", "allOf"];
/// The subset of [`LIST`] that combines alternatives or parts of one
/// object.
const COMBINE: [&str; 3] = ["oneOf", "anyOf", "allOf"];

/// Closes objects and tidies descriptions, in `v` and every schema in it.
/// A property without a description of its own (the tag and content of an
/// enum variant) gets its object's.
///
/// An object schema with properties gets `additionalProperties: false`.
/// One that also combines subschemas (a struct with a flattened tagged
/// enum: its own fields, then one variant's) gets `unevaluatedProperties:
/// false` instead, and the subschemas are left open: each sees only its
/// own properties, so closing them would refuse the parent's.
fn tidy(v: &mut Value, close: bool) {
    let Some(o) = v.as_object_mut() else {
        return;
    };
    let combines = COMBINE.iter().any(|k| o.contains_key(*k));
    let open = !o.contains_key("additionalProperties") && !o.contains_key("unevaluatedProperties");
    if o.contains_key("properties") && open {
        if combines {
            o.insert("unevaluatedProperties".into(), false.into());
        } else if close {
            o.insert("additionalProperties".into(), false.into());
        }
    }
    let parts_open = !(o.contains_key("properties") && combines);
    if let Some(Value::String(d)) = o.get_mut("description") {
        *d = prose(d);
    }
    // An enum variant's tag and content properties are described by the
    // variant's documentation.
    if let (Some(Value::String(d)), Some(Value::Object(props))) =
        (o.get("description").cloned(), o.get_mut("properties"))
    {
        for p in props.values_mut().filter_map(Value::as_object_mut) {
            p.entry("description").or_insert_with(|| d.clone().into());
        }
    }
    for (k, sub) in o.iter_mut() {
        let k = k.as_str();
        if ONE.contains(&k) {
            tidy(sub, true);
        } else if MAP.contains(&k) {
            sub.as_object_mut()
                .into_iter()
                .flat_map(Map::values_mut)
                .for_each(|s| tidy(s, true));
        } else if LIST.contains(&k) {
            let close = !COMBINE.contains(&k) || parts_open;
            sub.as_array_mut()
                .into_iter()
                .flatten()
                .for_each(|s| tidy(s, close));
        }
    }
}

/// A doc comment as plain prose: code blocks dropped, lines of a paragraph
/// joined, intra-doc links reduced to their text (`` [`X`] `` and
/// `` [`X`](path) `` become `` `X` ``).
fn prose(doc: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut fenced = false;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if t.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(t);
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    unlink(&paragraphs.join("\n\n"))
}

/// `[text]` and `[text](target)` become `text`; other brackets stay.
fn unlink(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if after[..close].starts_with('`') && after[..close].ends_with('`') => {
                out.push_str(&after[..close]);
                rest = &after[close + 1..];
                if rest.starts_with('(')
                    && let Some(end) = rest.find(')')
                {
                    rest = &rest[end + 1..];
                }
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_drops_code_and_links() {
        let doc = "One number.\nSecond line, see [`Counter::ALL`].\n\n```\nlet x = 1;\n\n```\n\
                   Last [`X`](crate::X) and [0, 1].";
        assert_eq!(
            prose(doc),
            "One number. Second line, see `Counter::ALL`.\n\nLast `X` and [0, 1]."
        );
    }

    #[test]
    fn objects_are_closed_and_flattened_variants_left_open() {
        let mut v = serde_json::json!({
            "type": "object",
            "properties": { "a": { "type": "object", "properties": {} } },
            "oneOf": [ { "type": "object", "properties": { "tag": { "const": "x" } } } ],
            "$defs": { "D": { "type": "object", "properties": {} } }
        });
        tidy(&mut v, true);
        assert_eq!(v["unevaluatedProperties"], false);
        assert!(v.get("additionalProperties").is_none());
        assert!(v["oneOf"][0].get("additionalProperties").is_none());
        assert_eq!(v["properties"]["a"]["additionalProperties"], false);
        assert_eq!(v["$defs"]["D"]["additionalProperties"], false);
    }
}
