//! `GET /metrics`: the dashboard's figures in the Prometheus text exposition format
//! (version 0.0.4), labelled by kind and instance.
//!
//! Written by hand rather than through a metrics registry: the figures are not observed
//! here but copied from other processes' `GetStats` snapshots, including ready-made
//! cumulative histograms, which is what the text format expresses directly. The writer
//! groups samples by family (one `# HELP` and `# TYPE` each), keeps names and label names
//! within the allowed characters, escapes label values, and never writes the same series
//! twice.

mod names;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display, Write as _};

use self::names::{Labels, metric_name};
use crate::members::{CounterView, HistogramView, MemberState, MemberView};
use crate::snapshot::{JobView, Snapshot};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of every metric name.
const NAMESPACE: &str = "owlmesh";

/// Renders a snapshot as a Prometheus exposition.
pub fn render(snapshot: &Snapshot) -> String {
    let mut exposition = Exposition::default();
    for member in &snapshot.members {
        member_metrics(&mut exposition, member);
    }
    for job in &snapshot.jobs {
        job_metrics(&mut exposition, job);
    }
    exposition.to_string()
}

fn member_metrics(exposition: &mut Exposition, member: &MemberView) {
    let labels = Labels::new()
        .with("kind", &member.kind)
        .with("instance", &member.id);
    let answered = member.last_error.is_none() && member.taken_at_ms.is_some();
    let up = u64::from(answered && member.state != MemberState::Gone);
    exposition.gauge(
        "up",
        "Whether the instance answered the dashboard's latest poll (0 when gone).",
        &labels.clone().with("address", &member.address),
        up,
    );
    // A gone instance's last figures are history, not the present: only `up` is kept.
    if member.state == MemberState::Gone {
        return;
    }
    if member.kind == "dispatcher" {
        let primary = u64::from(member.primary);
        exposition.gauge(
            "dispatcher_primary",
            "Whether this dispatcher is the one the mesh follows now.",
            &labels,
            primary,
        );
    }
    if let Some(uptime_ms) = member.uptime_ms {
        exposition.gauge(
            "uptime_seconds",
            "Seconds since the instance started.",
            &labels,
            uptime_ms as f64 / 1000.0,
        );
    }
    load_metrics(exposition, member, &labels);
    queue_metrics(exposition, member, &labels);
    for counter in &member.counters {
        counter_metric(exposition, counter, &labels);
    }
    for histogram in &member.histograms {
        histogram_metric(exposition, histogram, &labels);
    }
}

fn load_metrics(exposition: &mut Exposition, member: &MemberView, labels: &Labels) {
    let Some(load) = &member.load else { return };
    exposition.gauge(
        "load_free_slots",
        "Work the instance can take now, as last reported to the directory.",
        labels,
        u64::from(load.free_slots),
    );
    exposition.gauge(
        "load_queue_depth",
        "Items waiting in the instance's queues, as last reported to the directory.",
        labels,
        load.queue_depth,
    );
}

fn queue_metrics(exposition: &mut Exposition, member: &MemberView, labels: &Labels) {
    for queue in &member.queues {
        let labels = labels
            .clone()
            .with("queue", &queue.name)
            .with_extra(&queue.labels);
        exposition.gauge(
            "queue_depth",
            "Items in the queue now.",
            &labels,
            queue.depth,
        );
        if queue.capacity > 0 {
            exposition.gauge(
                "queue_capacity",
                "The queue's bound.",
                &labels,
                queue.capacity,
            );
        }
    }
}

fn counter_metric(exposition: &mut Exposition, counter: &CounterView, labels: &Labels) {
    let labels = labels.clone().with_extra(&counter.labels);
    let name = metric_name(&counter.name);
    if counter.gauge {
        let help = format!("{} of the instance now.", counter.name);
        exposition.gauge(&name, &help, &labels, counter.value);
    } else {
        let help = format!("{} since the instance started.", counter.name);
        exposition.counter(&name, &help, &labels, counter.value);
    }
}

fn histogram_metric(exposition: &mut Exposition, histogram: &HistogramView, labels: &Labels) {
    let labels = labels.clone();
    let help = format!(
        "{} observed by the instance since it started.",
        histogram.name
    );
    exposition.histogram(&metric_name(&histogram.name), &help, &labels, histogram);
}

fn job_metrics(exposition: &mut Exposition, job: &JobView) {
    let labels = Labels::new().with("job", &job.id).with("name", &job.name);
    for (status, count) in [
        ("queued", job.queued),
        ("in_flight", job.in_flight),
        ("done", job.done),
        ("failed", job.failed),
    ] {
        exposition.gauge(
            "job_urls",
            "URLs of the job's current crawl epoch, by status.",
            &labels.clone().with("status", status),
            count,
        );
    }
    exposition.gauge(
        "job_items",
        "Data items extracted in the job's current crawl epoch.",
        &labels,
        job.items,
    );
    exposition.gauge(
        "job_documents",
        "Documents found in the job's current crawl epoch.",
        &labels,
        job.documents,
    );
    exposition.gauge(
        "job_epoch",
        "The job's current crawl epoch.",
        &labels,
        job.epoch,
    );
}

/// A sample value: integers stay exact, floats follow the format's spelling of infinities.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Integer(u64),
    Float(f64),
}

impl From<u64> for Number {
    fn from(value: u64) -> Self {
        Self::Integer(value)
    }
}

impl From<f64> for Number {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Integer(value) => write!(f, "{value}"),
            Self::Float(value) if value.is_nan() => f.write_str("NaN"),
            Self::Float(value) if value == f64::INFINITY => f.write_str("+Inf"),
            Self::Float(value) if value == f64::NEG_INFINITY => f.write_str("-Inf"),
            Self::Float(value) => write!(f, "{value}"),
        }
    }
}

impl Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pairs().is_empty() {
            return Ok(());
        }
        f.write_char('{')?;
        for (index, (name, value)) in self.pairs().iter().enumerate() {
            if index > 0 {
                f.write_char(',')?;
            }
            write!(f, "{name}=\"{}\"", escape_label_value(value))?;
        }
        f.write_char('}')
    }
}

/// The three kinds of family this exposition writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyType {
    Gauge,
    Counter,
    Histogram,
}

impl FamilyType {
    fn name(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric family: its type, help text and sample lines.
#[derive(Debug)]
struct Family {
    kind: FamilyType,
    help: String,
    lines: Vec<String>,
    series: BTreeSet<Labels>,
}

/// Samples grouped by family, written in name order.
#[derive(Debug, Default)]
struct Exposition {
    families: BTreeMap<String, Family>,
}

impl Exposition {
    fn gauge(&mut self, name: &str, help: &str, labels: &Labels, value: impl Into<Number>) {
        let name = format!("{NAMESPACE}_{name}");
        let line = format!("{name}{labels} {}", value.into());
        self.add(name, FamilyType::Gauge, help, labels, vec![line]);
    }

    fn counter(&mut self, name: &str, help: &str, labels: &Labels, value: impl Into<Number>) {
        let name = format!("{NAMESPACE}_{name}_total");
        let line = format!("{name}{labels} {}", value.into());
        self.add(name, FamilyType::Counter, help, labels, vec![line]);
    }

    /// `_bucket` lines for each bound and `+Inf` (which holds every observation), then
    /// `_sum` and `_count`.
    fn histogram(&mut self, name: &str, help: &str, labels: &Labels, histogram: &HistogramView) {
        let name = format!("{NAMESPACE}_{name}");
        let mut lines = Vec::with_capacity(histogram.bounds.len() + 3);
        let buckets = histogram.bounds.iter().zip(&histogram.cumulative_counts);
        for (bound, count) in buckets {
            let bucket = labels.clone().with("le", &Number::from(*bound).to_string());
            lines.push(format!("{name}_bucket{bucket} {count}"));
        }
        let infinite = labels.clone().with("le", "+Inf");
        lines.push(format!("{name}_bucket{infinite} {}", histogram.count));
        lines.push(format!(
            "{name}_sum{labels} {}",
            Number::from(histogram.sum)
        ));
        lines.push(format!("{name}_count{labels} {}", histogram.count));
        self.add(name, FamilyType::Histogram, help, labels, lines);
    }

    /// Adds one series' lines to its family. A series written before, or a name already
    /// used by a family of another type, is left out: either would make the whole
    /// exposition invalid.
    fn add(
        &mut self,
        name: String,
        kind: FamilyType,
        help: &str,
        labels: &Labels,
        lines: Vec<String>,
    ) {
        let family = self.families.entry(name).or_insert_with(|| Family {
            kind,
            help: help.to_owned(),
            lines: Vec::new(),
            series: BTreeSet::new(),
        });
        if family.kind != kind || !family.series.insert(labels.clone()) {
            return;
        }
        family.lines.extend(lines);
    }
}

impl Display for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, family) in &self.families {
            writeln!(f, "# HELP {name} {}", escape_help(&family.help))?;
            writeln!(f, "# TYPE {name} {}", family.kind.name())?;
            for line in &family.lines {
                writeln!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

/// Backslash, double quote and line feed escaped, as label values require.
fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Backslash and line feed escaped, as help texts require.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::{LoadView, QueueView};
    use crate::snapshot::Totals;

    fn member(kind: &str, id: &str, state: MemberState) -> MemberView {
        MemberView {
            kind: kind.into(),
            id: id.into(),
            address: "127.0.0.1:7801".into(),
            state,
            status: Some("busy".into()),
            primary: false,
            priority: Some(0),
            load: None,
            uptime_ms: Some(1500),
            taken_at_ms: Some(1),
            last_answer_ms: Some(1),
            gone_since_ms: None,
            last_error: None,
            queues: Vec::new(),
            counters: Vec::new(),
            histograms: Vec::new(),
        }
    }

    fn snapshot(members: Vec<MemberView>, jobs: Vec<JobView>) -> Snapshot {
        Snapshot {
            at_ms: 0,
            directory_synced: true,
            primary: None,
            totals: Totals {
                frontier: None,
                in_flight: None,
                pages_per_second: 0.0,
                items_per_second: 0.0,
                errors_per_second: 0.0,
                pages_fetched: 0,
                items_extracted: 0,
                fetch_errors: 0,
                live_members: 0,
                gone_members: 0,
            },
            members,
            jobs,
            jobs_at_ms: None,
            events: Vec::new(),
            failures: Vec::new(),
            last_event_seq: 0,
            series: Vec::new(),
        }
    }

    fn scraper() -> MemberView {
        let mut scraper = member("scraper", "scraper-0", MemberState::Busy);
        scraper.load = Some(LoadView {
            state: "busy".into(),
            free_slots: 3,
            queue_depth: 5,
        });
        scraper.queues.push(QueueView {
            name: "inbox".into(),
            labels: BTreeMap::new(),
            depth: 5,
            capacity: 8,
        });
        scraper.counters.push(CounterView {
            name: "pages_fetched".into(),
            labels: BTreeMap::new(),
            value: 42,
            gauge: false,
            rate: Some(2.0),
        });
        scraper.counters.push(CounterView {
            name: "hosts_owned".into(),
            labels: BTreeMap::new(),
            value: 2,
            gauge: true,
            rate: None,
        });
        scraper.histograms.push(HistogramView {
            name: "fetch_seconds".into(),
            bounds: vec![0.005, 0.5],
            cumulative_counts: vec![1, 3],
            sum: 0.75,
            count: 4,
            p50: Some(0.5),
            p99: None,
        });
        scraper
    }

    #[test]
    fn a_scraper_renders_as_gauges_counters_and_a_histogram() {
        let text = render(&snapshot(vec![scraper()], Vec::new()));
        let expected = r#"# HELP owlmesh_fetch_seconds fetch_seconds observed by the instance since it started.
# TYPE owlmesh_fetch_seconds histogram
owlmesh_fetch_seconds_bucket{kind="scraper",instance="scraper-0",le="0.005"} 1
owlmesh_fetch_seconds_bucket{kind="scraper",instance="scraper-0",le="0.5"} 3
owlmesh_fetch_seconds_bucket{kind="scraper",instance="scraper-0",le="+Inf"} 4
owlmesh_fetch_seconds_sum{kind="scraper",instance="scraper-0"} 0.75
owlmesh_fetch_seconds_count{kind="scraper",instance="scraper-0"} 4
# HELP owlmesh_hosts_owned hosts_owned of the instance now.
# TYPE owlmesh_hosts_owned gauge
owlmesh_hosts_owned{kind="scraper",instance="scraper-0"} 2
# HELP owlmesh_load_free_slots Work the instance can take now, as last reported to the directory.
# TYPE owlmesh_load_free_slots gauge
owlmesh_load_free_slots{kind="scraper",instance="scraper-0"} 3
# HELP owlmesh_load_queue_depth Items waiting in the instance's queues, as last reported to the directory.
# TYPE owlmesh_load_queue_depth gauge
owlmesh_load_queue_depth{kind="scraper",instance="scraper-0"} 5
# HELP owlmesh_pages_fetched_total pages_fetched since the instance started.
# TYPE owlmesh_pages_fetched_total counter
owlmesh_pages_fetched_total{kind="scraper",instance="scraper-0"} 42
# HELP owlmesh_queue_capacity The queue's bound.
# TYPE owlmesh_queue_capacity gauge
owlmesh_queue_capacity{kind="scraper",instance="scraper-0",queue="inbox"} 8
# HELP owlmesh_queue_depth Items in the queue now.
# TYPE owlmesh_queue_depth gauge
owlmesh_queue_depth{kind="scraper",instance="scraper-0",queue="inbox"} 5
# HELP owlmesh_up Whether the instance answered the dashboard's latest poll (0 when gone).
# TYPE owlmesh_up gauge
owlmesh_up{kind="scraper",instance="scraper-0",address="127.0.0.1:7801"} 1
# HELP owlmesh_uptime_seconds Seconds since the instance started.
# TYPE owlmesh_uptime_seconds gauge
owlmesh_uptime_seconds{kind="scraper",instance="scraper-0"} 1.5
"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn a_gone_member_only_says_it_is_down() {
        let mut gone = scraper();
        gone.state = MemberState::Gone;
        let text = render(&snapshot(vec![gone], Vec::new()));
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [r#"owlmesh_up{kind="scraper",instance="scraper-0",address="127.0.0.1:7801"} 0"#]
        );
    }

    #[test]
    fn label_values_are_escaped_and_clashing_label_names_renamed() {
        let mut dispatcher = member("dispatcher", "d\"1\\\n", MemberState::Idle);
        dispatcher.queues.push(QueueView {
            name: "frontier".into(),
            labels: BTreeMap::from([
                ("job".to_owned(), "j-1".to_owned()),
                ("9 bad-name".to_owned(), "x".to_owned()),
            ]),
            depth: 7,
            capacity: 0,
        });
        let text = render(&snapshot(vec![dispatcher], Vec::new()));
        let line = text
            .lines()
            .find(|line| line.starts_with("owlmesh_queue_depth"))
            .unwrap();
        assert_eq!(
            line,
            r#"owlmesh_queue_depth{kind="dispatcher",instance="d\"1\\\n",queue="frontier",_9_bad_name="x",exported_job="j-1"} 7"#
        );
        assert!(text.contains("owlmesh_dispatcher_primary{"));
    }

    #[test]
    fn duplicate_series_and_type_clashes_are_left_out() {
        let mut scraper = scraper();
        let twice = scraper.counters[0].clone();
        scraper.counters.push(twice);
        // A histogram named like an existing gauge family would make the exposition invalid.
        scraper.histograms.push(HistogramView {
            name: "hosts_owned".into(),
            ..scraper.histograms[0].clone()
        });
        let text = render(&snapshot(vec![scraper], Vec::new()));
        assert_eq!(text.matches("owlmesh_pages_fetched_total{").count(), 1);
        assert!(!text.contains("owlmesh_hosts_owned_bucket"));
    }

    #[test]
    fn jobs_render_their_urls_by_status() {
        let job = JobView {
            id: "j1".into(),
            name: "catalogue".into(),
            state: "running".into(),
            queued: 10,
            in_flight: 2,
            done: 5,
            failed: 1,
            items: 4,
            documents: 0,
            epoch: 1,
            progress: 0.3,
            created_at_ms: 0,
        };
        let text = render(&snapshot(Vec::new(), vec![job]));
        assert!(text.contains(r#"owlmesh_job_urls{job="j1",name="catalogue",status="queued"} 10"#));
        assert!(text.contains(r#"owlmesh_job_urls{job="j1",name="catalogue",status="failed"} 1"#));
        assert!(text.contains(r#"owlmesh_job_items{job="j1",name="catalogue"} 4"#));
    }

    #[test]
    fn numbers_use_the_formats_spelling() {
        assert_eq!(Number::from(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Number::from(f64::NAN).to_string(), "NaN");
        assert_eq!(Number::from(0.0025).to_string(), "0.0025");
        assert_eq!(Number::from(u64::MAX).to_string(), "18446744073709551615");
    }
}
