//! The frontier's test suite, written once and run against every backend the run can reach
//! (`owlmesh_storage::testing`): SQLite always, PostgreSQL when `OWLMESH_TEST_POSTGRES_URL`
//! names a server.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use owlmesh_proto::v1::{JobSpec, OutcomeStatus, RecrawlSchedule};
use owlmesh_storage::testing::{self, TestDatabase};

use super::*;

/// The tests' clock: 2023-11-14T22:13:20Z.
const NOW: i64 = 1_700_000_000_000;
const LEASE_MS: i64 = 60_000;

async fn open(database: &TestDatabase) -> Frontier {
    Frontier::connect(&FrontierConfig::new(database.url()))
        .await
        .expect("open the frontier")
}

/// Runs `test` on a fresh frontier of every backend.
async fn each_backend(test: impl AsyncFn(&TestDatabase, Frontier)) {
    testing::each_backend(SQLITE_FILE_NAME, async |database| {
        let frontier = open(database).await;
        test(database, frontier.clone()).await;
        frontier.close().await;
    })
    .await;
}

fn key(url: &str) -> UrlKey {
    let host = url.split("://").nth(1).unwrap_or(url);
    let host = host.split('/').next().unwrap_or(host);
    UrlKey {
        url: url.to_owned(),
        host_key: host.to_owned(),
        fingerprint: xxhash_rust::xxh3::xxh3_64(url.as_bytes()),
    }
}

fn keys(urls: &[&str]) -> Vec<UrlKey> {
    urls.iter().map(|url| key(url)).collect()
}

fn at_depth(urls: &[&str], depth: u32) -> Vec<NewUrl> {
    keys(urls)
        .into_iter()
        .map(|key| NewUrl { key, depth })
        .collect()
}

fn spec(seeds: &[&str]) -> JobSpec {
    JobSpec {
        name: "test".to_owned(),
        seeds: seeds.iter().map(|seed| (*seed).to_owned()).collect(),
        max_retries: 2,
        ..JobSpec::default()
    }
}

async fn create(frontier: &Frontier, spec: &JobSpec) -> JobRecord {
    let seeds: Vec<UrlKey> = spec.seeds.iter().map(|seed| key(seed)).collect();
    let job = NewJob {
        spec,
        seeds: &seeds,
        now_ms: NOW,
        request_id: None,
    };
    let submitted = frontier.create_job(job).await.expect("create job");
    assert!(submitted.created);
    submitted.job
}

fn claim_all(now_ms: i64) -> ClaimRequest<'static> {
    ClaimRequest {
        limit: 10_000,
        per_host: None,
        hosts: HostFilter::All,
        owner: "scraper-1",
        now_ms,
        lease_ms: LEASE_MS,
    }
}

fn outcome(claimed: &Claimed, status: OutcomeStatus) -> Completion {
    Completion {
        lease_id: claimed.lease_id,
        owner: claimed.owner.clone(),
        job_id: claimed.job_id.clone(),
        status,
        error: String::new(),
        retry_after_ms: 0,
        fetched_at_ms: 0,
        items: 0,
        documents: 0,
        links: Vec::new(),
        redirects: Vec::new(),
    }
}

fn urls(claimed: &[Claimed]) -> Vec<&str> {
    claimed.iter().map(|claimed| claimed.url.as_str()).collect()
}

async fn progress(frontier: &Frontier, job: &JobRecord) -> Progress {
    frontier.get_job(&job.id).await.unwrap().progress
}

#[tokio::test]
async fn a_fingerprint_is_admitted_once() {
    each_backend(async |_, frontier| {
        let job = create(
            &frontier,
            &spec(&["http://a/1", "http://a/1", "http://a/2"]),
        )
        .await;
        assert_eq!(job.progress.queued, 2);
        assert_eq!(job.state, JobState::Queued);
        assert_eq!(job.epoch, 1);

        let more = at_depth(&["http://a/1", "http://a/3", "http://a/3"], 1);
        assert_eq!(frontier.add_urls(&job.id, &more, NOW).await.unwrap(), 1);
        assert_eq!(frontier.add_urls(&job.id, &more, NOW).await.unwrap(), 0);
        assert_eq!(progress(&frontier, &job).await.queued, 3);

        let odd = "http://a/it's \"quoted\"/ü?q=1&r=\\";
        assert_eq!(
            frontier
                .add_urls(&job.id, &at_depth(&[odd], 1), NOW)
                .await
                .unwrap(),
            1
        );
        let stored = frontier
            .url(&job.id, key(odd).fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.url, odd, "texts survive the JSON batch intact");
    })
    .await;
}

#[tokio::test]
async fn max_pages_caps_admissions_without_counting_duplicates() {
    each_backend(async |_, frontier| {
        let mut limited = spec(&["http://a/seed"]);
        limited.max_pages = 3;
        let job = create(&frontier, &limited).await;

        let links = at_depth(
            &["http://a/seed", "http://a/1", "http://a/2", "http://a/3"],
            1,
        );
        assert_eq!(frontier.add_urls(&job.id, &links, NOW).await.unwrap(), 2);
        let later = at_depth(&["http://a/4"], 1);
        assert_eq!(frontier.add_urls(&job.id, &later, NOW).await.unwrap(), 0);
        assert_eq!(progress(&frontier, &job).await.queued, 3);
        let seen = frontier.url(&job.id, key("http://a/1").fingerprint).await;
        assert!(seen.unwrap().is_some());
        let dropped = frontier.url(&job.id, key("http://a/3").fingerprint).await;
        assert!(dropped.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn max_depth_drops_deeper_links() {
    each_backend(async |_, frontier| {
        let mut shallow = spec(&["http://a/"]);
        shallow.max_depth = 1;
        let job = create(&frontier, &shallow).await;
        let deep = at_depth(&["http://a/deep"], 2);
        assert_eq!(frontier.add_urls(&job.id, &deep, NOW).await.unwrap(), 0);

        let seed = frontier.claim(&claim_all(NOW)).await.unwrap();
        let mut done = outcome(&seed[0], OutcomeStatus::Done);
        done.links = keys(&["http://a/1"]);
        frontier.complete(&[done], NOW).await.unwrap();

        let first = frontier.claim(&claim_all(NOW)).await.unwrap();
        assert_eq!(urls(&first), ["http://a/1"]);
        assert_eq!(first[0].depth, 1);
        let mut done = outcome(&first[0], OutcomeStatus::Done);
        done.links = keys(&["http://a/2"]);
        let report = frontier.complete(&[done], NOW).await.unwrap();
        assert_eq!(report.admitted, 0);
        assert_eq!(report.finished_jobs, vec![job.id.clone()]);
        assert_eq!(
            frontier.get_job(&job.id).await.unwrap().state,
            JobState::Done
        );
    })
    .await;
}

#[tokio::test]
async fn the_frontier_remembers_the_links_it_stored_but_not_those_it_dropped() {
    each_backend(async |_, frontier| {
        let mut shallow = spec(&["http://a/"]);
        shallow.max_depth = 1;
        let job = create(&frontier, &shallow).await;
        let holds = |job: &str, url: &str| {
            let fingerprint = key(url).fingerprint;
            frontier
                .not_known_to_hold(job, vec![(fingerprint, ())])
                .is_empty()
        };

        let seed = frontier.claim(&claim_all(NOW)).await.unwrap();
        let mut done = outcome(&seed[0], OutcomeStatus::Done);
        done.links = keys(&["http://a/1", "http://a/2"]);
        frontier.complete(&[done], NOW).await.unwrap();
        assert!(holds(&job.id, "http://a/1"));
        assert!(holds(&job.id, "http://a/2"));
        assert!(!holds("another-job", "http://a/1"));

        // Links past max_depth are not stored, so they are not remembered either: found
        // again at a shallower depth, they must still reach the database.
        let first = frontier.claim(&claim_all(NOW)).await.unwrap();
        let mut done = outcome(&first[0], OutcomeStatus::Done);
        done.links = keys(&["http://a/too-deep"]);
        frontier.complete(&[done], NOW).await.unwrap();
        assert!(!holds(&job.id, "http://a/too-deep"));
    })
    .await;
}

#[tokio::test]
async fn claim_then_complete_keeps_counts() {
    each_backend(async |_, frontier| {
        let seeds = ["http://a/1", "http://b/1", "http://c/1", "http://d/1"];
        let job = create(&frontier, &spec(&seeds)).await;

        let claimed = frontier.claim(&claim_all(NOW)).await.unwrap();
        assert_eq!(claimed.len(), 4);
        let leases: HashSet<u64> = claimed.iter().map(|c| c.lease_id).collect();
        assert_eq!(leases.len(), 4, "lease ids are unique");
        for url in &claimed {
            assert_eq!((url.epoch, url.attempt, url.depth), (1, 1, 0));
            assert_eq!(url.lease_expires_at_ms, NOW + LEASE_MS);
        }
        let running = frontier.get_job(&job.id).await.unwrap();
        assert_eq!(running.state, JobState::Running);
        assert_eq!(
            (running.progress.queued, running.progress.in_flight),
            (0, 4)
        );

        let by_url = |url: &str| claimed.iter().find(|c| c.url == url).unwrap();
        let mut done = outcome(by_url("http://a/1"), OutcomeStatus::Done);
        done.items = 1;
        done.documents = 2;
        done.fetched_at_ms = NOW + 5;
        done.links = keys(&["http://a/2", "http://e/1", "http://a/1"]);
        let mut failed = outcome(by_url("http://b/1"), OutcomeStatus::Failed);
        failed.error = "http 404".to_owned();
        let disallowed = outcome(by_url("http://c/1"), OutcomeStatus::Disallowed);
        let returned = outcome(by_url("http://d/1"), OutcomeStatus::Returned);
        let report = frontier
            .complete(&[done, failed, disallowed, returned], NOW + 10)
            .await
            .unwrap();
        assert_eq!((report.applied, report.stale, report.admitted), (4, 0, 2));
        assert!(report.finished_jobs.is_empty());

        let counts = progress(&frontier, &job).await;
        let expected = Progress {
            queued: 3,
            in_flight: 0,
            done: 1,
            failed: 2,
            items: 1,
            documents: 2,
        };
        assert_eq!(counts, expected);

        let a1 = frontier
            .url(&job.id, key("http://a/1").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a1.state, a1.done_epoch, a1.last_fetched_at_ms),
            (UrlState::Done, Some(1), Some(NOW + 5))
        );
        assert_eq!(a1.lease_id, None);
        let b1 = frontier
            .url(&job.id, key("http://b/1").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (b1.state, b1.last_error.as_deref()),
            (UrlState::Failed, Some("http 404"))
        );
        let c1 = frontier
            .url(&job.id, key("http://c/1").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c1.last_error.as_deref(), Some("disallowed by robots.txt"));
        let d1 = frontier
            .url(&job.id, key("http://d/1").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((d1.state, d1.attempts), (UrlState::Queued, 0));
        let e1 = frontier
            .url(&job.id, key("http://e/1").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((e1.state, e1.depth), (UrlState::Queued, 1));

        let again = frontier.claim(&claim_all(NOW + 10)).await.unwrap();
        let mut again_urls = urls(&again);
        again_urls.sort_unstable();
        assert_eq!(again_urls, ["http://a/2", "http://d/1", "http://e/1"]);
        let d1 = again.iter().find(|c| c.url == "http://d/1").unwrap();
        assert_eq!(d1.attempt, 1, "a returned URL does not count an attempt");
    })
    .await;
}

#[tokio::test]
async fn an_expired_lease_requeues_and_its_late_outcome_is_stale() {
    each_backend(async |_, frontier| {
        let job = create(&frontier, &spec(&["http://a/1"])).await;
        let request = ClaimRequest {
            lease_ms: 1_000,
            ..claim_all(NOW)
        };
        let first = frontier.claim(&request).await.unwrap();
        assert_eq!(frontier.expire_leases(NOW + 999).await.unwrap().returned, 0);
        assert_eq!(
            frontier.expire_leases(NOW + 1_000).await.unwrap().returned,
            1
        );
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.queued, counts.in_flight), (1, 0));

        let late = outcome(&first[0], OutcomeStatus::Done);
        let report = frontier
            .complete(std::slice::from_ref(&late), NOW + 1_500)
            .await
            .unwrap();
        assert_eq!((report.applied, report.stale), (0, 1));
        assert_eq!(progress(&frontier, &job).await.done, 0);

        let second = frontier.claim(&claim_all(NOW + 2_000)).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_ne!(second[0].lease_id, first[0].lease_id);
        assert_eq!(second[0].attempt, 2, "the expiry counted as an attempt");
        let report = frontier.complete(&[late], NOW + 2_500).await.unwrap();
        assert_eq!(report.stale, 1, "the old lease stays stale after a new one");

        let fresh = outcome(&second[0], OutcomeStatus::Done);
        let report = frontier
            .complete(&[fresh.clone(), fresh], NOW + 3_000)
            .await
            .unwrap();
        assert_eq!(
            (report.applied, report.stale),
            (1, 1),
            "reported twice: once stale"
        );
        assert_eq!(progress(&frontier, &job).await.done, 1);
    })
    .await;
}

#[tokio::test]
async fn a_url_whose_lease_keeps_expiring_fails_once_its_retries_are_spent() {
    each_backend(async |_, frontier| {
        // max_retries is 2: the third expiry is one too many.
        let job = create(&frontier, &spec(&["http://a/poison"])).await;
        let mut now = NOW;
        for expiry in 1..=3 {
            let request = ClaimRequest {
                lease_ms: 1_000,
                ..claim_all(now)
            };
            let claimed = frontier.claim(&request).await.unwrap();
            assert_eq!(claimed.len(), 1, "dispatched again after expiry {expiry}");
            assert_eq!(claimed[0].attempt, expiry);
            now += 1_000;
            let expired = frontier.expire_leases(now).await.unwrap();
            assert_eq!(expired.returned, 1);
            // Only the last expiry fails it, and says so.
            let failed: Vec<_> = expired.failed.iter().map(|f| f.reason.as_str()).collect();
            let expected: &[&str] = if expiry == 3 {
                &["lease expired 3 times"]
            } else {
                &[]
            };
            assert_eq!(failed, expected, "after expiry {expiry}");
        }
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.queued, counts.in_flight, counts.failed), (0, 0, 1));
        let stored = frontier
            .url(&job.id, key("http://a/poison").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.last_error.as_deref(), Some("lease expired 3 times"));
        assert!(frontier.claim(&claim_all(now)).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn only_the_scraper_holding_a_lease_can_settle_it() {
    each_backend(async |_, frontier| {
        let job = create(&frontier, &spec(&["http://a/1"])).await;
        let claimed = frontier.claim(&claim_all(NOW)).await.unwrap();
        assert_eq!(claimed[0].owner, "scraper-1");
        let forged = Completion {
            owner: "scraper-2".into(),
            ..outcome(&claimed[0], OutcomeStatus::Failed)
        };
        let report = frontier.complete(&[forged], NOW + 10).await.unwrap();
        assert_eq!(
            (report.applied, report.stale),
            (0, 1),
            "another scraper's outcome"
        );
        let counts = progress(&frontier, &job).await;
        assert_eq!(
            (counts.in_flight, counts.failed),
            (1, 0),
            "the lease still stands"
        );

        let own = outcome(&claimed[0], OutcomeStatus::Done);
        let report = frontier.complete(&[own], NOW + 20).await.unwrap();
        assert_eq!(report.applied, 1);
        assert_eq!(progress(&frontier, &job).await.done, 1);
    })
    .await;
}

#[tokio::test]
async fn lease_ids_are_not_sequential_and_a_guessed_one_settles_nothing() {
    each_backend(async |_, frontier| {
        let seeds: Vec<String> = (0..32).map(|n| format!("http://a/{n}")).collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let job = create(&frontier, &spec(&seeds)).await;
        let claimed = frontier.claim(&claim_all(NOW)).await.unwrap();
        assert_eq!(claimed.len(), 32);
        let mut ids: Vec<u64> = claimed.iter().map(|c| c.lease_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 32, "every lease has an id of its own");
        // 32 random 63-bit ids: any two closer than 2^32 would be a one-in-a-million draw,
        // and a counter hands out neighbours.
        let closest = ids.windows(2).map(|pair| pair[1] - pair[0]).min().unwrap();
        assert!(closest > 1 << 32, "lease ids close together: {ids:?}");
        assert!(ids.iter().all(|id| *id <= i64::MAX as u64));

        // The holder itself, guessing around the ids it was given, settles nothing.
        let guesses: Vec<Completion> = [ids[0] + 1, ids[0] - 1, ids[31] + 1, 1, 2]
            .into_iter()
            .filter(|guess| !ids.contains(guess))
            .map(|guess| Completion {
                lease_id: guess,
                ..outcome(&claimed[0], OutcomeStatus::Failed)
            })
            .collect();
        let report = frontier.complete(&guesses, NOW + 10).await.unwrap();
        assert_eq!((report.applied, report.stale), (0, guesses.len()));
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.in_flight, counts.failed), (32, 0));
    })
    .await;
}

#[tokio::test]
async fn a_request_id_creates_one_job_and_refuses_another_spec() {
    each_backend(async |_, frontier| {
        let first_spec = spec(&["http://a/1"]);
        let seeds = keys(&["http://a/1"]);
        let submit = |spec: &JobSpec, request_id: Option<&str>| {
            let seeds = seeds.clone();
            let spec = spec.clone();
            let request_id = request_id.map(str::to_owned);
            let frontier = frontier.clone();
            async move {
                let job = NewJob {
                    spec: &spec,
                    seeds: &seeds,
                    now_ms: NOW,
                    request_id: request_id.as_deref(),
                };
                frontier.create_job(job).await
            }
        };
        let first = submit(&first_spec, Some("request-1")).await.unwrap();
        assert!(first.created);
        // Retried, and retried at once from two places: still the one job.
        let again = submit(&first_spec, Some("request-1")).await.unwrap();
        assert_eq!((again.created, &again.job.id), (false, &first.job.id));
        let (one, two) = tokio::join!(
            submit(&first_spec, Some("request-1")),
            submit(&first_spec, Some("request-1"))
        );
        assert_eq!(one.unwrap().job.id, first.job.id);
        assert_eq!(two.unwrap().job.id, first.job.id);

        let mut other_spec = first_spec.clone();
        other_spec.max_pages = 5;
        let refused = submit(&other_spec, Some("request-1")).await.unwrap_err();
        assert!(
            matches!(&refused, FrontierError::RequestIdReused { job, .. } if *job == first.job.id),
            "{refused}"
        );
        assert!(
            refused
                .to_string()
                .starts_with("request_id: \"request-1\" already created")
        );

        // Another id, or none, is another job.
        let other = submit(&first_spec, Some("request-2")).await.unwrap();
        assert!(other.created && other.job.id != first.job.id);
        let unnamed = submit(&first_spec, None).await.unwrap();
        let unnamed_again = submit(&first_spec, None).await.unwrap();
        assert_ne!(unnamed.job.id, unnamed_again.job.id);
        let page = frontier.list_jobs(None, 100).await.unwrap();
        assert_eq!(page.jobs.len(), 4);
    })
    .await;
}

#[tokio::test]
async fn jobs_are_listed_in_pages_newest_first_without_skipping_jobs_added_meanwhile() {
    each_backend(async |_, frontier| {
        let submit_at = async |now_ms: i64| {
            let spec = spec(&["http://a/1"]);
            let seeds = keys(&["http://a/1"]);
            let job = NewJob {
                spec: &spec,
                seeds: &seeds,
                now_ms,
                request_id: None,
            };
            frontier.create_job(job).await.unwrap().job.id
        };
        // Seven jobs, three of them in one millisecond (their ids order them).
        let mut expected = Vec::new();
        for now_ms in [NOW, NOW + 1, NOW + 1, NOW + 1, NOW + 2, NOW + 3, NOW + 4] {
            expected.push((now_ms, submit_at(now_ms).await));
        }
        expected.sort_by(|a, b| b.cmp(a));
        let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

        let mut listed = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = frontier.list_jobs(after.as_ref(), 3).await.unwrap();
            assert!(page.jobs.len() <= 3);
            listed.extend(page.jobs.iter().map(|job| job.id.clone()));
            pages += 1;
            if pages == 1 {
                // A job submitted while paging is newer than every page: none is skipped.
                submit_at(NOW + 10).await;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, expected);
        assert_eq!(pages, 3);
        let first = frontier.list_jobs(None, 100).await.unwrap();
        assert_eq!(first.jobs.len(), 8);
        assert_eq!(first.next, None);
    })
    .await;
}

#[tokio::test]
async fn a_job_whose_spec_does_not_decode_is_reported_not_fatal() {
    each_backend(async |database, frontier| {
        let readable = create(&frontier, &spec(&["http://a/1"])).await;
        let broken = create(&frontier, &spec(&["http://b/1"])).await;
        corrupt_spec(database, &broken.id).await;

        let page = frontier.list_jobs(None, 10).await.unwrap();
        let ids: Vec<&str> = page.jobs.iter().map(|job| job.id.as_str()).collect();
        assert_eq!(ids, [readable.id.as_str()]);
        assert_eq!(page.unreadable.len(), 1);
        assert_eq!(page.unreadable[0].id, broken.id);
        assert!(
            page.unreadable[0]
                .reason
                .contains(&format!("stored spec of job {} does not decode", broken.id)),
            "{:?}",
            page.unreadable
        );
    })
    .await;
}

/// Writes bytes that are no protobuf over a job's stored spec, as a hand-edited row would.
async fn corrupt_spec(database: &TestDatabase, job_id: &str) {
    use owlmesh_storage::Statement;
    let pool = owlmesh_storage::Pool::connect(database.url(), 1, &store::schema())
        .await
        .unwrap();
    let garbage: &[u8] = &[0xff, 0xff, 0xff, 0xff];
    let statement = Statement::new("UPDATE frontier_jobs SET spec = $1 WHERE id = $2")
        .bytes(garbage)
        .text(job_id);
    let mut tx = pool.begin_write().await.unwrap();
    tx.execute(statement).await.unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn transient_failures_back_off_then_fail_with_a_reason() {
    each_backend(async |_, frontier| {
        let job = create(&frontier, &spec(&["http://a/1"])).await;
        let fingerprint = key("http://a/1").fingerprint;

        let first = frontier.claim(&claim_all(NOW)).await.unwrap();
        let mut failure = outcome(&first[0], OutcomeStatus::Transient);
        failure.error = "timeout".to_owned();
        frontier.complete(&[failure], NOW).await.unwrap();
        let url = frontier.url(&job.id, fingerprint).await.unwrap().unwrap();
        assert_eq!((url.state, url.attempts), (UrlState::Queued, 1));
        assert_eq!(url.due_at_ms, NOW + backoff_ms(1));
        assert_eq!(url.last_error.as_deref(), Some("timeout"));

        let early = frontier
            .claim(&claim_all(NOW + backoff_ms(1) - 1))
            .await
            .unwrap();
        assert!(early.is_empty(), "not due during the backoff");
        let due = NOW + backoff_ms(1);
        let second = frontier.claim(&claim_all(due)).await.unwrap();
        assert_eq!(second[0].attempt, 2);
        let mut slow_down = outcome(&second[0], OutcomeStatus::Transient);
        slow_down.error = "http 429".to_owned();
        slow_down.retry_after_ms = 30_000;
        frontier.complete(&[slow_down], due).await.unwrap();
        let url = frontier.url(&job.id, fingerprint).await.unwrap().unwrap();
        assert_eq!(
            url.due_at_ms,
            due + 30_000,
            "Retry-After outweighs the backoff"
        );

        let third = frontier.claim(&claim_all(due + 30_000)).await.unwrap();
        assert_eq!(third[0].attempt, 3);
        let mut last = outcome(&third[0], OutcomeStatus::Transient);
        last.error = "http 503".to_owned();
        let report = frontier.complete(&[last], due + 30_000).await.unwrap();
        assert_eq!(report.finished_jobs, vec![job.id.clone()]);
        let url = frontier.url(&job.id, fingerprint).await.unwrap().unwrap();
        assert_eq!(url.state, UrlState::Failed);
        assert_eq!(
            url.last_error.as_deref(),
            Some("gave up after 3 attempts: http 503")
        );
        let finished = frontier.get_job(&job.id).await.unwrap();
        assert_eq!(
            (finished.state, finished.progress.failed),
            (JobState::Done, 1)
        );
        assert_eq!(finished.next_epoch_at_ms, 0, "no schedule, no next epoch");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_share_a_url() {
    each_backend(async |database, frontier| {
        let seeds: Vec<String> = (0..1_000)
            .map(|n| format!("http://host-{}/page-{n}", n % 37))
            .collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let job = create(&frontier, &spec(&seeds)).await;
        let other_pool = open(database).await;

        let mut tasks = tokio::task::JoinSet::new();
        for (task, limit) in [7_usize, 13, 29, 50].into_iter().enumerate() {
            let frontier = if task % 2 == 0 {
                frontier.clone()
            } else {
                other_pool.clone()
            };
            tasks.spawn(async move {
                let owner = format!("scraper-{task}");
                let mut claimed = Vec::new();
                loop {
                    let request = ClaimRequest {
                        limit,
                        owner: &owner,
                        ..claim_all(NOW)
                    };
                    let batch = frontier.claim(&request).await.expect("claim");
                    if batch.is_empty() {
                        return claimed;
                    }
                    claimed.extend(batch.into_iter().map(|c| c.url));
                }
            });
        }
        let mut all = Vec::new();
        let mut busy_tasks = 0;
        while let Some(claimed) = tasks.join_next().await {
            let claimed = claimed.unwrap();
            busy_tasks += usize::from(!claimed.is_empty());
            all.extend(claimed);
        }
        let unique: HashSet<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(all.len(), 1_000, "no URL claimed twice");
        assert_eq!(unique, seeds.iter().copied().collect::<HashSet<_>>());
        assert!(busy_tasks >= 2, "the claims did run side by side");
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.queued, counts.in_flight), (0, 1_000));
        other_pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_concurrent_writers_keep_counts_exact() {
    each_backend(async |database, frontier| {
        let seeds: Vec<String> = (0..200)
            .map(|n| format!("http://host-{}/{n}", n % 7))
            .collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let job = create(&frontier, &spec(&seeds)).await;
        let other_pool = open(database).await;
        // A shared clock: leases of 20 ticks expire while other workers carry on.
        let clock = Arc::new(AtomicI64::new(NOW));
        let admitted = Arc::new(AtomicU64::new(200));

        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..4_u64 {
            let frontier = if task % 2 == 0 {
                frontier.clone()
            } else {
                other_pool.clone()
            };
            let (clock, admitted, job_id) = (clock.clone(), admitted.clone(), job.id.clone());
            tasks.spawn(async move {
                let owner = format!("scraper-{task}");
                loop {
                    let now = clock.fetch_add(1, Ordering::SeqCst);
                    if task == 0 {
                        frontier.expire_leases(now).await.expect("expire");
                    }
                    let request = ClaimRequest {
                        limit: 16,
                        owner: &owner,
                        lease_ms: 20,
                        ..claim_all(now)
                    };
                    let claimed = frontier.claim(&request).await.expect("claim");
                    if claimed.is_empty() {
                        let state = frontier.get_job(&job_id).await.expect("job").state;
                        if state == JobState::Done {
                            return;
                        }
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let outcomes: Vec<Completion> =
                        claimed.iter().map(|url| mixed_outcome(url, task)).collect();
                    let now = clock.fetch_add(1, Ordering::SeqCst);
                    let report = frontier.complete(&outcomes, now).await.expect("complete");
                    admitted.fetch_add(report.admitted, Ordering::SeqCst);
                }
            });
        }
        while let Some(finished) = tasks.join_next().await {
            finished.unwrap();
        }
        let finished = frontier.get_job(&job.id).await.unwrap();
        let expected = Progress {
            done: admitted.load(Ordering::SeqCst),
            ..Progress::default()
        };
        assert_eq!(finished.state, JobState::Done);
        assert_eq!(
            finished.progress, expected,
            "every admitted URL done exactly once"
        );
        other_pool.close().await;
    })
    .await;
}

/// Done with two links from a bounded space (so many are duplicates), or now and then
/// returned unfetched.
fn mixed_outcome(claimed: &Claimed, task: u64) -> Completion {
    let seed = claimed.fingerprint ^ task;
    if seed.is_multiple_of(5) {
        return outcome(claimed, OutcomeStatus::Returned);
    }
    let mut done = outcome(claimed, OutcomeStatus::Done);
    let links: Vec<String> = (0..2)
        .map(|n| {
            let page = (seed >> (8 * n)) % 600;
            format!("http://host-{}/{page}", page % 7)
        })
        .collect();
    done.links = links.iter().map(|link| key(link)).collect();
    done
}

#[tokio::test]
async fn a_departed_scraper_releases_its_leases() {
    each_backend(async |_, frontier| {
        let job = create(
            &frontier,
            &spec(&["http://a/1", "http://a/2", "http://b/1"]),
        )
        .await;
        let gone = ClaimRequest {
            limit: 2,
            owner: "gone",
            ..claim_all(NOW)
        };
        let first = frontier.claim(&gone).await.unwrap();
        let alive = ClaimRequest {
            owner: "alive",
            ..claim_all(NOW)
        };
        let second = frontier.claim(&alive).await.unwrap();
        assert_eq!((first.len(), second.len()), (2, 1));

        assert_eq!(frontier.release_owner("gone", NOW).await.unwrap(), 2);
        assert_eq!(frontier.release_owner("gone", NOW).await.unwrap(), 0);
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.queued, counts.in_flight), (2, 1));
        let report = frontier
            .complete(&[outcome(&first[0], OutcomeStatus::Done)], NOW)
            .await;
        assert_eq!(report.unwrap().stale, 1);

        let taken_back = [second[0].lease_id, 12_345];
        assert_eq!(frontier.requeue_leases(&taken_back, NOW).await.unwrap(), 1);
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.queued, counts.in_flight), (3, 0));
        assert_eq!(frontier.claim(&claim_all(NOW)).await.unwrap().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_reconnecting_scraper_keeps_only_the_leases_it_still_holds() {
    each_backend(async |_, frontier| {
        let job = create(
            &frontier,
            &spec(&["http://a/1", "http://a/2", "http://a/3", "http://b/1"]),
        )
        .await;
        let mine = ClaimRequest {
            limit: 3,
            owner: "back",
            ..claim_all(NOW)
        };
        let held = frontier.claim(&mine).await.unwrap();
        let other = ClaimRequest {
            owner: "other",
            ..claim_all(NOW)
        };
        assert_eq!(frontier.claim(&other).await.unwrap().len(), 1);

        // It still holds the first lease; the other two were lost on the way (an assignment
        // it never received, an outcome that died with a dispatcher).
        let still = [held[0].lease_id, 12_345];
        let released = frontier.release_owner_except("back", &still, NOW, &|| true);
        assert_eq!(released.await.unwrap(), 2);
        assert_eq!(
            frontier
                .release_owner_except("back", &still, NOW, &|| true)
                .await
                .unwrap(),
            0
        );
        let counts = progress(&frontier, &job).await;
        assert_eq!((counts.queued, counts.in_flight), (2, 2));
        let report = frontier
            .complete(&[outcome(&held[0], OutcomeStatus::Done)], NOW)
            .await
            .unwrap();
        assert_eq!(
            (report.applied, report.stale),
            (1, 0),
            "the held lease is intact"
        );
        let report = frontier
            .complete(&[outcome(&held[1], OutcomeStatus::Done)], NOW)
            .await
            .unwrap();
        assert_eq!(report.stale, 1, "a released lease is stale");
        // Holding nothing releases everything the owner had, unless the session it was
        // for has ended meanwhile.
        let again = frontier.claim(&mine).await.unwrap();
        assert_eq!(again.len(), 2);
        let ended = frontier.release_owner_except("back", &[], NOW, &|| false);
        assert_eq!(ended.await.unwrap(), 0);
        assert_eq!(
            frontier
                .release_owner_except("back", &[], NOW, &|| true)
                .await
                .unwrap(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn a_new_epoch_requeues_done_urls() {
    each_backend(async |_, frontier| {
        let mut scheduled = spec(&["http://a/1", "http://a/2"]);
        scheduled.recrawl = Some(RecrawlSchedule {
            every: "1h".to_owned(),
            cron: String::new(),
        });
        let job = create(&frontier, &scheduled).await;
        let hour = 3_600_000;

        let claimed = frontier.claim(&claim_all(NOW)).await.unwrap();
        assert!(matches!(
            frontier.expedite(&job.id, NOW).await,
            Err(FrontierError::EpochInProgress(_))
        ));
        let mut redirected = outcome(&claimed[0], OutcomeStatus::Done);
        redirected.redirects = keys(&["http://a/moved"]);
        let failed = outcome(&claimed[1], OutcomeStatus::Failed);
        let report = frontier
            .complete(&[redirected, failed], NOW + 60_000)
            .await
            .unwrap();
        assert_eq!(report.finished_jobs, vec![job.id.clone()]);
        let done = frontier.get_job(&job.id).await.unwrap();
        assert_eq!(done.state, JobState::Done);
        assert_eq!(
            done.next_epoch_at_ms,
            NOW + hour,
            "an hour after the epoch started"
        );
        let moved = at_depth(&["http://a/moved"], 1);
        assert_eq!(
            frontier.add_urls(&job.id, &moved, NOW).await.unwrap(),
            0,
            "redirect step seen"
        );

        assert!(
            frontier
                .start_due_epochs(NOW + hour - 1)
                .await
                .unwrap()
                .is_empty()
        );
        let started = frontier.start_due_epochs(NOW + hour).await.unwrap();
        let expected = EpochStart {
            job_id: job.id.clone(),
            epoch: 2,
            requeued: 2,
        };
        assert_eq!(started, [expected]);
        let second = frontier.get_job(&job.id).await.unwrap();
        assert_eq!(
            (second.state, second.epoch, second.next_epoch_at_ms),
            (JobState::Running, 2, 0)
        );
        assert_eq!(
            second.progress,
            Progress {
                queued: 2,
                ..Progress::default()
            }
        );

        let claimed = frontier.claim(&claim_all(NOW + hour)).await.unwrap();
        assert_eq!(claimed.len(), 2, "the redirect step is not dispatched");
        assert!(claimed.iter().all(|c| c.epoch == 2 && c.attempt == 1));
        let outcomes: Vec<Completion> = claimed
            .iter()
            .map(|c| outcome(c, OutcomeStatus::Done))
            .collect();
        frontier.complete(&outcomes, NOW + hour + 5).await.unwrap();
        let url = frontier
            .url(&job.id, key("http://a/2").fingerprint)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((url.state, url.done_epoch), (UrlState::Done, Some(2)));

        let expedited = frontier.expedite(&job.id, NOW + hour + 10).await.unwrap();
        assert_eq!((expedited.epoch, expedited.requeued), (3, 2));
        assert!(
            frontier
                .start_due_epochs(NOW + 10 * hour)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn claims_interleave_hosts_and_follow_priority_and_filters() {
    each_backend(async |_, frontier| {
        let low = create(
            &frontier,
            &spec(&[
                "http://a/1",
                "http://a/2",
                "http://a/3",
                "http://b/1",
                "http://b/2",
            ]),
        )
        .await;
        let only_a = |host: &str| host == "a";
        let preview = |limit, per_host, hosts| ClaimRequest {
            limit,
            per_host,
            hosts,
            ..claim_all(NOW)
        };

        let interleaved = frontier
            .claim(&preview(2, None, HostFilter::All))
            .await
            .unwrap();
        assert_eq!(urls(&interleaved), ["http://a/1", "http://b/1"]);
        let capped = frontier
            .claim(&preview(10, Some(1), HostFilter::All))
            .await
            .unwrap();
        assert_eq!(urls(&capped), ["http://a/2", "http://b/2"]);
        let hosts = ["b".to_owned()];
        let filtered = frontier
            .claim(&preview(10, None, HostFilter::Only(&hosts)))
            .await
            .unwrap();
        assert!(filtered.is_empty(), "host b has nothing left");

        let mut urgent = spec(&["http://a/9", "http://c/1"]);
        urgent.priority = 5;
        let high = create(&frontier, &urgent).await;
        let owned = frontier
            .claim(&preview(10, None, HostFilter::Owned(&only_a)))
            .await
            .unwrap();
        assert_eq!(
            urls(&owned),
            ["http://a/9", "http://a/3"],
            "higher priority first"
        );
        assert_eq!(
            (owned[0].job_id.as_str(), owned[1].job_id.as_str()),
            (high.id.as_str(), low.id.as_str())
        );
        let hosts = ["c".to_owned(), "x".to_owned()];
        let filtered = frontier
            .claim(&preview(10, None, HostFilter::Only(&hosts)))
            .await
            .unwrap();
        assert_eq!(urls(&filtered), ["http://c/1"]);
        let depth = frontier.queue_depth().await.unwrap();
        assert_eq!((depth.queued, depth.in_flight, depth.jobs.len()), (0, 7, 2));
    })
    .await;
}

#[tokio::test]
async fn pause_resume_and_cancel_a_job() {
    each_backend(async |_, frontier| {
        let job = create(
            &frontier,
            &spec(&["http://a/1", "http://a/2", "http://a/3"]),
        )
        .await;
        let paused = frontier
            .set_state(&job.id, JobState::Paused, NOW)
            .await
            .unwrap();
        assert_eq!(paused.state, JobState::Paused);
        assert!(frontier.claim(&claim_all(NOW)).await.unwrap().is_empty());

        frontier
            .set_state(&job.id, JobState::Running, NOW)
            .await
            .unwrap();
        let claimed = frontier
            .claim(&ClaimRequest {
                limit: 1,
                ..claim_all(NOW)
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);

        let cancelled = frontier
            .set_state(&job.id, JobState::Cancelled, NOW)
            .await
            .unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert_eq!(
            (cancelled.progress.queued, cancelled.progress.in_flight),
            (0, 1)
        );
        let mut late = outcome(&claimed[0], OutcomeStatus::Done);
        late.links = keys(&["http://a/4"]);
        let report = frontier.complete(&[late], NOW).await.unwrap();
        assert_eq!(
            (report.applied, report.admitted),
            (1, 0),
            "a cancelled job admits nothing"
        );
        let resumed = frontier.set_state(&job.id, JobState::Running, NOW).await;
        assert!(matches!(
            resumed,
            Err(FrontierError::InvalidTransition { .. })
        ));
        assert!(matches!(
            frontier.get_job("nope").await,
            Err(FrontierError::JobNotFound(_))
        ));

        let page = frontier.list_jobs(None, 10).await.unwrap();
        assert_eq!((page.unreadable.len(), page.next), (0, None));
        let listed = page.jobs;
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].spec,
            spec(&["http://a/1", "http://a/2", "http://a/3"])
        );
        assert_eq!(listed[0].to_proto().state, "cancelled");
    })
    .await;
}

#[tokio::test]
async fn a_finished_job_stays_as_it_is_when_cancelled_unless_a_recrawl_is_ahead() {
    each_backend(async |_, frontier| {
        let finish = async |job: &JobRecord| {
            let claimed = frontier.claim(&claim_all(NOW)).await.unwrap();
            let outcomes: Vec<_> = claimed
                .iter()
                .filter(|claim| claim.job_id == job.id)
                .map(|claim| outcome(claim, OutcomeStatus::Done))
                .collect();
            frontier.complete(&outcomes, NOW).await.unwrap();
            frontier.get_job(&job.id).await.unwrap()
        };
        let once = create(&frontier, &spec(&["http://a/1"])).await;
        let done = finish(&once).await;
        assert_eq!((done.state, done.next_epoch_at_ms), (JobState::Done, 0));
        let refused = frontier
            .set_state(&once.id, JobState::Cancelled, NOW)
            .await
            .expect_err("a done job is not cancelled");
        let FrontierError::Finished { job: id, state } = &refused else {
            panic!("expected Finished, got {refused:?}");
        };
        assert_eq!((id.as_str(), *state), (once.id.as_str(), JobState::Done));
        let status = tonic::Status::from(refused);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains(&once.id) && status.message().contains("done"),
            "the message names the job and its state: {}",
            status.message()
        );
        let after = frontier.get_job(&once.id).await.unwrap();
        assert_eq!(
            (after.state, after.progress.done),
            (JobState::Done, 1),
            "state and counts are untouched"
        );

        // A done job with a recrawl ahead is a schedule still running: cancel ends it.
        let mut recrawled = spec(&["http://b/1"]);
        recrawled.recrawl = Some(RecrawlSchedule {
            every: "1h".to_owned(),
            cron: String::new(),
        });
        let recurring = create(&frontier, &recrawled).await;
        let done = finish(&recurring).await;
        assert_eq!(done.state, JobState::Done);
        assert!(done.next_epoch_at_ms > 0, "a recrawl is scheduled");
        let cancelled = frontier
            .set_state(&recurring.id, JobState::Cancelled, NOW)
            .await
            .expect("the schedule is cancelled");
        assert_eq!(
            (
                cancelled.state,
                cancelled.next_epoch_at_ms,
                cancelled.progress.done
            ),
            (JobState::Cancelled, 0, 1)
        );
        // Cancelling again changes nothing and is no error; failing a cancelled job is.
        let again = frontier
            .set_state(&recurring.id, JobState::Cancelled, NOW)
            .await
            .expect("cancel is idempotent");
        assert_eq!(again.state, JobState::Cancelled);
        assert!(matches!(
            frontier
                .set_state(&recurring.id, JobState::Failed, NOW)
                .await,
            Err(FrontierError::Finished {
                state: JobState::Cancelled,
                ..
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn an_in_memory_sqlite_frontier_works() {
    let frontier = Frontier::connect(&FrontierConfig::new("sqlite::memory:"))
        .await
        .unwrap();
    let job = create(&frontier, &spec(&["http://a/1"])).await;
    let claimed = frontier.claim(&claim_all(NOW)).await.unwrap();
    frontier
        .complete(&[outcome(&claimed[0], OutcomeStatus::Done)], NOW)
        .await
        .unwrap();
    let done = frontier.get_job(&job.id).await.unwrap();
    assert_eq!((done.state, done.progress.done), (JobState::Done, 1));
}
