//! Metric families and their two exposition formats.
//!
//! A [`Family`] is a name, a help text, a [`Kind`] and samples. The
//! exporter builds the families of one scrape once
//! ([`Exporter::families`](super::Exporter::families)) and encodes them in
//! the format the scraper asked for ([`Format::negotiate`]):
//!
//! - OpenMetrics 1.0.0 through the `prometheus-client` crate's text encoder
//!   (`# EOF` terminated, counters' samples `NAME_total`, info samples
//!   `NAME_info`). Prometheus asks for it first.
//! - The Prometheus text format 0.0.4, which `prometheus-client` does not
//!   write: encoded here ([`encode_text`]). It is what `curl`, `promtool
//!   check metrics` and clients that send no `Accept` get. In it a
//!   counter's `# TYPE` names the sample (`NAME_total`) and an info family
//!   is a gauge `NAME_info`, so that each family's HELP and TYPE name its
//!   samples (the mismatch `promtool check metrics` reported on the old
//!   exporter).
//!
//! ```
//! use conntrack_kit::exporter::encode::{Family, Format, Kind, encode};
//! let f = Family::new("conntrack_stat_drop", "Packets dropped.", Kind::Counter)
//!     .sample(&[("netns", "host")], 7u64);
//! let text = encode(&[f.clone()], Format::Text);
//! assert!(text.contains("# TYPE conntrack_stat_drop_total counter\n"));
//! assert!(text.contains("conntrack_stat_drop_total{netns=\"host\"} 7\n"));
//! let om = encode(&[f], Format::OpenMetrics);
//! assert!(om.contains("# TYPE conntrack_stat_drop counter\n"));
//! assert!(om.ends_with("# EOF\n"));
//! assert_eq!(Format::negotiate(None), Format::Text);
//! assert_eq!(
//!     Format::negotiate(Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")),
//!     Format::OpenMetrics,
//! );
//! ```

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::sync::Arc;

/// The type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Monotonic; samples are `NAME_total` in both formats.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Labels describing something, value 1; samples are `NAME_info`.
    Info,
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer (counts, counters).
    Int(u64),
    /// A float (ages, durations, ratios).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

impl Value {
    /// The value as a float (for tests and comparisons).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// One sample: label pairs and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value (1 for info samples).
    pub value: Value,
}

/// A metric family: name (without `_total` or `_info`), help, kind and
/// samples. A family without samples is not written.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name; counters and info families get their suffix when encoded.
    pub name: String,
    /// One line of help (no newline, no backslash).
    pub help: String,
    /// Counter, gauge or info.
    pub kind: Kind,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: Kind) -> Self {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample (builder form).
    pub fn sample(mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> Self {
        self.push(labels, value);
        self
    }

    /// Adds a sample.
    pub fn push(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.samples.push(Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: value.into(),
        });
    }

    /// The name samples carry: `NAME_total` for counters, `NAME_info` for
    /// info families, `NAME` otherwise.
    pub fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Info => format!("{}_info", self.name),
            Kind::Gauge => self.name.clone(),
        }
    }
}

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format for a request's `Accept` header: OpenMetrics when it
    /// names `application/openmetrics-text` with a quality above 0 and at
    /// least that of any `text/plain` or wildcard range, else text 0.0.4
    /// (also without a header, or for one that names neither).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut om, mut text) = (None::<f32>, None::<f32>);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut om,
                "text/plain" | "text/*" | "*/*" => &mut text,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |s| s.max(q)));
        }
        match om {
            Some(q) if q > 0.0 && q >= text.unwrap_or(0.0) => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

/// Encodes `families` in `format`.
pub fn encode(families: &[Family], format: Format) -> String {
    match format {
        Format::Text => encode_text(families),
        Format::OpenMetrics => encode_openmetrics(families),
    }
}

/// The Prometheus text format 0.0.4: `# HELP` and `# TYPE` naming the
/// samples, label values escaped (`\\`, `\"`, `\n`).
pub fn encode_text(families: &[Family]) -> String {
    let mut out = String::with_capacity(4096);
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let name = f.sample_name();
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in &f.samples {
            out.push_str(&name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label_into(&mut out, v);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            push_value(&mut out, s.value);
            out.push('\n');
        }
    }
    out
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f.is_infinite() => out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" }),
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
    }
}

/// OpenMetrics 1.0.0 through `prometheus-client`'s encoder.
pub fn encode_openmetrics(families: &[Family]) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(Arc::new(families.to_vec()))));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and every family here is valid.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Families(Arc<Vec<Family>>);

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in self.0.iter().filter(|f| !f.samples.is_empty()) {
            let t = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Info => MetricType::Info,
            };
            let mut m = enc.encode_descriptor(&f.name, &f.help, None, t)?;
            for s in &f.samples {
                if f.kind == Kind::Info {
                    m.encode_info(&s.labels)?;
                    continue;
                }
                let mut fam = m.encode_family(&s.labels)?;
                match (f.kind, s.value) {
                    (Kind::Info, _) => {}
                    (Kind::Counter, Value::Int(v)) => {
                        fam.encode_counter::<NoLabelSet, _, u64>(&v, None)?
                    }
                    (Kind::Counter, Value::Float(v)) => {
                        fam.encode_counter::<NoLabelSet, _, f64>(&v, None)?
                    }
                    (Kind::Gauge, Value::Int(v)) => fam.encode_gauge(&(v as i64))?,
                    (Kind::Gauge, Value::Float(v)) => fam.encode_gauge(&v)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_families() -> Vec<Family> {
        vec![
            Family::new("a_up", "Up.", Kind::Gauge).sample(&[("netns", "x\"y\\z\nw")], 1u64),
            Family::new("a_drops", "Drops.", Kind::Counter)
                .sample(&[("netns", "h"), ("cpu", "0")], 3u64)
                .sample(&[("netns", "h"), ("cpu", "1")], 4u64),
            Family::new("a_netns", "Names.", Kind::Info).sample(&[("netns", "h")], 1u64),
            Family::new("a_age_seconds", "Age.", Kind::Gauge).sample(&[], 1.5f64),
            Family::new("a_empty", "Nothing.", Kind::Gauge),
        ]
    }

    #[test]
    fn text_names_the_samples_and_escapes() {
        let t = encode_text(&sample_families());
        assert_eq!(
            t,
            "# HELP a_up Up.\n# TYPE a_up gauge\na_up{netns=\"x\\\"y\\\\z\\nw\"} 1\n\
             # HELP a_drops_total Drops.\n# TYPE a_drops_total counter\n\
             a_drops_total{netns=\"h\",cpu=\"0\"} 3\na_drops_total{netns=\"h\",cpu=\"1\"} 4\n\
             # HELP a_netns_info Names.\n# TYPE a_netns_info gauge\na_netns_info{netns=\"h\"} 1\n\
             # HELP a_age_seconds Age.\n# TYPE a_age_seconds gauge\na_age_seconds 1.5\n"
        );
    }

    #[test]
    fn openmetrics_through_prometheus_client() {
        let t = encode_openmetrics(&sample_families());
        assert!(t.contains("# TYPE a_drops counter\n"), "{t}");
        assert!(
            t.contains("a_drops_total{netns=\"h\",cpu=\"0\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE a_netns info\n"), "{t}");
        assert!(t.contains("a_netns_info{netns=\"h\"} 1\n"), "{t}");
        assert!(!t.contains("a_empty"), "{t}");
        assert!(t.ends_with("# EOF\n"));
    }

    #[test]
    fn negotiation() {
        use Format::*;
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Text);
        assert_eq!(Format::negotiate(Some("application/json")), Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Text
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Text
        );
        assert_eq!(
            Format::negotiate(Some("application/OpenMetrics-Text; version=1.0.0")),
            OpenMetrics
        );
        assert_eq!(Format::negotiate(Some(",,;;q=x")), Text);
    }

    #[test]
    fn special_floats() {
        let mut s = String::new();
        push_value(&mut s, Value::Float(f64::INFINITY));
        push_value(&mut s, Value::Float(f64::NAN));
        assert_eq!(s, "+InfNaN");
    }
}
