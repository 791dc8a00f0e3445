//! `GET /metrics`: the dashboard's figures in the Prometheus text exposition format
//! (version 0.0.4), labelled by kind and instance.
//!
//! This module says which figures a snapshot yields and under which names; [`names`] holds
//! the naming and label rules, [`families`] groups the series into families and hands them
//! to `prometheus-client`'s text encoder, which writes and escapes the exposition.
//!
//! The encoder is the crate's Prometheus text format rather than its default OpenMetrics
//! one, so scrapers see the same names, types and `Content-Type` as before: counters keep
//! `_total` in their `# HELP` and `# TYPE` lines, and there is no `# EOF`. Only the spelling
//! of some numbers changed: a fractional figure (uptime, a histogram's sum) that is whole
//! reads `2.0` rather than `2` and a very small or large one takes an exponent (`1e-7`), and
//! histogram bounds are spelt as Go's clients spell them (`le="1e-05"`), so `le` labels match
//! theirs.

mod families;
mod names;

use std::fmt;

use prometheus_client::encoding::prometheus_text;

use self::families::Families;
use self::names::{Labels, metric_name};
use crate::members::{CounterView, HistogramView, MemberState, MemberView};
use crate::snapshot::{JobView, Snapshot};

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Renders a snapshot as a Prometheus exposition.
pub(crate) fn render(snapshot: &Snapshot) -> Result<String, fmt::Error> {
    let mut families = Families::default();
    for member in &snapshot.members {
        member_metrics(&mut families, member);
    }
    for job in &snapshot.jobs {
        job_metrics(&mut families, job);
    }
    families.encode()
}

fn member_metrics(families: &mut Families, member: &MemberView) {
    let labels = Labels::new()
        .with("kind", &member.kind)
        .with("instance", &member.id);
    let answered = member.last_error.is_none() && member.taken_at_ms.is_some();
    let up = u64::from(answered && member.state != MemberState::Gone);
    families.gauge(
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
        families.gauge(
            "dispatcher_primary",
            "Whether this dispatcher is the one the mesh follows now.",
            &labels,
            primary,
        );
    }
    if let Some(uptime_ms) = member.uptime_ms {
        families.gauge(
            "uptime_seconds",
            "Seconds since the instance started.",
            &labels,
            uptime_ms as f64 / 1000.0,
        );
    }
    load_metrics(families, member, &labels);
    queue_metrics(families, member, &labels);
    for counter in &member.counters {
        counter_metric(families, counter, &labels);
    }
    for histogram in &member.histograms {
        histogram_metric(families, histogram, &labels);
    }
}

fn load_metrics(families: &mut Families, member: &MemberView, labels: &Labels) {
    let Some(load) = &member.load else { return };
    families.gauge(
        "load_free_slots",
        "Work the instance can take now, as last reported to the directory.",
        labels,
        u64::from(load.free_slots),
    );
    families.gauge(
        "load_queue_depth",
        "Items waiting in the instance's queues, as last reported to the directory.",
        labels,
        load.queue_depth,
    );
}

fn queue_metrics(families: &mut Families, member: &MemberView, labels: &Labels) {
    for queue in &member.queues {
        let labels = labels
            .clone()
            .with("queue", &queue.name)
            .with_extra(&queue.labels);
        families.gauge(
            "queue_depth",
            "Items in the queue now.",
            &labels,
            queue.depth,
        );
        if queue.capacity > 0 {
            families.gauge(
                "queue_capacity",
                "The queue's bound.",
                &labels,
                queue.capacity,
            );
        }
    }
}

fn counter_metric(families: &mut Families, counter: &CounterView, labels: &Labels) {
    let labels = labels.clone().with_extra(&counter.labels);
    let name = metric_name(&counter.name);
    if counter.gauge {
        let help = format!("{} of the instance now.", counter.name);
        families.gauge(&name, &help, &labels, counter.value);
    } else {
        let help = format!("{} since the instance started.", counter.name);
        families.counter(&name, &help, &labels, counter.value);
    }
}

fn histogram_metric(families: &mut Families, histogram: &HistogramView, labels: &Labels) {
    let help = format!(
        "{} observed by the instance since it started.",
        histogram.name
    );
    families.histogram(&metric_name(&histogram.name), &help, labels, histogram);
}

fn job_metrics(families: &mut Families, job: &JobView) {
    let labels = Labels::new().with("job", &job.id).with("name", &job.name);
    for (status, count) in [
        ("queued", job.queued),
        ("in_flight", job.in_flight),
        ("done", job.done),
        ("failed", job.failed),
    ] {
        families.gauge(
            "job_urls",
            "URLs of the job's current crawl epoch, by status.",
            &labels.clone().with("status", status),
            count,
        );
    }
    families.gauge(
        "job_items",
        "Data items extracted in the job's current crawl epoch.",
        &labels,
        job.items,
    );
    families.gauge(
        "job_documents",
        "Documents found in the job's current crawl epoch.",
        &labels,
        job.documents,
    );
    families.gauge(
        "job_epoch",
        "The job's current crawl epoch.",
        &labels,
        job.epoch,
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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

    fn render_text(snapshot: &Snapshot) -> String {
        render(snapshot).expect("an exposition")
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
        let text = render_text(&snapshot(vec![scraper()], Vec::new()));
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
        let text = render_text(&snapshot(vec![gone], Vec::new()));
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
        let text = render_text(&snapshot(vec![dispatcher], Vec::new()));
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
        let text = render_text(&snapshot(vec![scraper], Vec::new()));
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
        let text = render_text(&snapshot(Vec::new(), vec![job]));
        assert!(text.contains(r#"owlmesh_job_urls{job="j1",name="catalogue",status="queued"} 10"#));
        assert!(text.contains(r#"owlmesh_job_urls{job="j1",name="catalogue",status="failed"} 1"#));
        assert!(text.contains(r#"owlmesh_job_items{job="j1",name="catalogue"} 4"#));
    }

    #[test]
    fn numbers_use_the_formats_spelling() {
        let mut scraper = member("scraper", "s", MemberState::Busy);
        scraper.counters.push(CounterView {
            name: "pages_fetched".into(),
            labels: BTreeMap::new(),
            value: u64::MAX,
            gauge: false,
            rate: None,
        });
        scraper.histograms.push(HistogramView {
            name: "fetch_seconds".into(),
            bounds: vec![0.0025, 1.0],
            cumulative_counts: vec![0, 0],
            sum: f64::NAN,
            count: 0,
            p50: None,
            p99: None,
        });
        scraper.histograms.push(HistogramView {
            name: "wait_seconds".into(),
            sum: f64::INFINITY,
            ..scraper.histograms[0].clone()
        });
        let text = render_text(&snapshot(vec![scraper], Vec::new()));
        let labels = r#"kind="scraper",instance="s""#;
        for line in [
            format!("owlmesh_pages_fetched_total{{{labels}}} 18446744073709551615"),
            format!(r#"owlmesh_fetch_seconds_bucket{{{labels},le="0.0025"}} 0"#),
            format!(r#"owlmesh_fetch_seconds_bucket{{{labels},le="1"}} 0"#),
            format!("owlmesh_fetch_seconds_sum{{{labels}}} NaN"),
            format!("owlmesh_wait_seconds_sum{{{labels}}} +Inf"),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn an_empty_snapshot_renders_nothing() {
        assert_eq!(render_text(&snapshot(Vec::new(), Vec::new())), "");
    }
}
