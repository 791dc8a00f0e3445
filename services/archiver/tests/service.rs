//! The archiver over a real socket: the generated client streams batches, queries, exports and
//! sends bad input to a tonic server on `127.0.0.1:0`.

mod common;

use std::collections::HashSet;

use common::{Harness, batch, document, event, page, pages, text};
use owlmesh_proto::v1::field_value::Value;
use owlmesh_proto::v1::{
    ArchiveBatch, ExportRequest, QueryDocumentsRequest, QueryEventsRequest, QueryItemsRequest,
};
use tonic::Code;

fn export(job_id: &str, format: &str, documents: bool) -> ExportRequest {
    ExportRequest {
        job_id: job_id.into(),
        format: format.into(),
        documents,
    }
}

fn items_request(job_id: &str, handler: &str, limit: u32, page_token: &str) -> QueryItemsRequest {
    QueryItemsRequest {
        job_id: job_id.into(),
        handler: handler.into(),
        limit,
        page_token: page_token.into(),
    }
}

#[tokio::test]
async fn archive_stream_acknowledges_each_batch_and_counts_duplicates() {
    let harness = Harness::start(|_| {}).await;
    let first = batch(
        10,
        pages("job", 0, 3, "article"),
        vec![event("e1", "outcome", "job", 1)],
    );
    let mut second_pages = pages("job", 2, 3, "article");
    second_pages.push(page("job", "https://site.example/0", 2, "article"));
    let second = batch(11, second_pages, vec![event("e1", "outcome", "job", 1)]);
    let (acks, status) = harness.archive(vec![first.clone(), second, first]).await;
    assert!(status.is_none(), "{status:?}");
    let acks: Vec<_> = acks
        .iter()
        .map(|ack| (ack.batch_id, ack.stored, ack.duplicates))
        .collect();
    assert_eq!(acks, vec![(10, 3, 0), (11, 3, 1), (10, 0, 3)]);

    let stats = harness.service.stats().snapshot();
    assert_eq!(
        (
            stats.batches,
            stats.pages_stored,
            stats.duplicates,
            stats.events_stored
        ),
        (3, 6, 4, 1)
    );
    harness.stop().await;
}

#[tokio::test]
async fn bad_batch_ends_the_stream_with_invalid_argument_naming_the_field() {
    let harness = Harness::start(|_| {}).await;
    let good = batch(1, pages("job", 0, 2, "article"), vec![]);
    let mut bad_pages = pages("job", 10, 4, "article");
    bad_pages[3].url = "mailto:someone@example.com".into();
    let bad = batch(2, bad_pages, vec![]);
    let never_read = batch(3, pages("job", 20, 1, "article"), vec![]);
    let (acks, status) = harness.archive(vec![good, bad, never_read]).await;
    assert_eq!(acks.iter().map(|ack| ack.batch_id).collect::<Vec<_>>(), [1]);
    let status = status.expect("the stream ends with a status");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "pages[3].url: must be an absolute http(s) URL"
    );

    let mut client = harness.client.clone();
    let items = client
        .query_items(items_request("job", "", 0, ""))
        .await
        .unwrap();
    assert_eq!(
        items.into_inner().items.len(),
        2,
        "nothing of the bad batch is stored"
    );

    let mut no_job = pages("job", 0, 1, "article");
    no_job[0].job_id.clear();
    let (_, status) = harness.archive(vec![batch(4, no_job, vec![])]).await;
    let status = status.expect("rejected");
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "pages[0].job_id: must not be empty")
    );
    let (_, status) = harness
        .archive(vec![batch(5, vec![], vec![event("", "outcome", "", 1)])])
        .await;
    assert_eq!(
        status.map(|s| s.message().to_string()).as_deref(),
        Some("events[0].id: must not be empty")
    );
    harness.stop().await;
}

/// The message and code of a failed call, or `("accepted", Ok)`.
fn rejection<T>(result: Result<T, tonic::Status>) -> (String, Code) {
    match result {
        Ok(_) => ("accepted".to_string(), Code::Ok),
        Err(status) => (status.message().to_string(), status.code()),
    }
}

#[tokio::test]
async fn bad_queries_are_invalid_arguments_naming_the_field() {
    let harness = Harness::start(|_| {}).await;
    let mut client = harness.client.clone();
    let invalid = |message: &str| (message.to_string(), Code::InvalidArgument);

    let result = client.query_items(items_request("", "", 0, "")).await;
    assert_eq!(rejection(result), invalid("job_id: must not be empty"));
    let result = client
        .query_items(items_request("job", "", 0, "not-a-token"))
        .await;
    assert_eq!(
        rejection(result),
        invalid("page_token: malformed page token")
    );
    let result = client.query_items(items_request("job", "", 0, "-4")).await;
    assert_eq!(
        rejection(result),
        invalid("page_token: malformed page token")
    );
    let result = client.query_items(items_request("job", "", 5000, "")).await;
    assert_eq!(
        rejection(result),
        ("accepted".to_string(), Code::Ok),
        "limits are clamped"
    );
    let request = QueryDocumentsRequest::default();
    assert_eq!(
        rejection(client.query_documents(request).await),
        invalid("job_id: must not be empty")
    );
    let request = QueryEventsRequest {
        since_ms: 2000,
        until_ms: 1000,
        ..QueryEventsRequest::default()
    };
    assert_eq!(
        rejection(client.query_events(request).await),
        invalid("until_ms: must be after since_ms")
    );
    let request = QueryEventsRequest {
        page_token: "x".into(),
        ..QueryEventsRequest::default()
    };
    assert_eq!(
        rejection(client.query_events(request).await),
        invalid("page_token: malformed page token")
    );
    let result = client.export(export("job", "xml", false)).await;
    assert_eq!(
        rejection(result),
        invalid("format: must be \"jsonl\" or \"csv\"")
    );
    let result = client.export(export("", "csv", false)).await;
    assert_eq!(rejection(result), invalid("job_id: must not be empty"));
    harness.stop().await;
}

#[tokio::test]
async fn query_items_pages_with_tokens_and_filters_by_handler() {
    let harness = Harness::start(|_| {}).await;
    let mut all = pages("job", 0, 12, "article");
    all.extend(pages("job", 12, 3, "listing"));
    harness.archive(vec![batch(1, all, vec![])]).await;
    let mut client = harness.client.clone();

    let mut urls = Vec::new();
    let mut token = String::new();
    loop {
        let response = client
            .query_items(items_request("job", "article", 5, &token))
            .await
            .unwrap()
            .into_inner();
        assert!(response.items.len() <= 5);
        urls.extend(response.items.iter().map(|item| item.url.clone()));
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    assert_eq!(urls.len(), 12);
    assert_eq!(urls.iter().collect::<HashSet<_>>().len(), 12);

    let listing = client
        .query_items(items_request("job", "listing", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listing.items.len(), 3);
    assert!(listing.next_page_token.is_empty());
    let item = &listing.items[0];
    assert_eq!((item.handler.as_str(), item.epoch), ("listing", 1));
    assert_eq!(
        item.fields["title"],
        text("title of https://site.example/12")
    );
    let tags = item.fields["tags"].value.clone();
    assert!(matches!(tags, Some(Value::List(list)) if list.values == ["a", "b"]));
    harness.stop().await;
}

#[tokio::test]
async fn query_events_by_job_kind_and_time() {
    let harness = Harness::start(|_| {}).await;
    let events = (0..10)
        .map(|n| {
            event(
                &format!("e{n}"),
                if n < 5 { "assigned" } else { "outcome" },
                "job",
                n * 100,
            )
        })
        .collect();
    harness.archive(vec![batch(1, vec![], events)]).await;
    let mut client = harness.client.clone();
    let request = QueryEventsRequest {
        job_id: "job".into(),
        kind: "outcome".into(),
        since_ms: 600,
        until_ms: 900,
        limit: 10,
        page_token: String::new(),
    };
    let response = client.query_events(request).await.unwrap().into_inner();
    let ids: Vec<_> = response
        .events
        .iter()
        .map(|event| event.id.as_str())
        .collect();
    assert_eq!(ids, ["e6", "e7", "e8"]);
    assert_eq!(response.events[0].attributes["reason"], "test");
    assert_eq!(response.events[0].source, "scraper/1");
    harness.stop().await;
}

/// The JSON lines as values, without the `changed` flag that only the archive knows.
fn without_changed(lines: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(lines)
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            value.as_object_mut().unwrap().remove("changed");
            value
        })
        .collect()
}

#[tokio::test]
async fn export_jsonl_is_what_the_writer_wrote() {
    let harness = Harness::start(|_| {}).await;
    let batches: Vec<ArchiveBatch> = (0..5)
        .map(|n| batch(n, pages("job", n as usize * 400, 400, "article"), vec![]))
        .collect();
    harness.archive(batches).await;
    harness
        .archive(vec![batch(9, pages("other", 0, 2, "article"), vec![])])
        .await;

    let exported = harness.export(export("job", "jsonl", false)).await.unwrap();
    let written = std::fs::read(harness.dir.path().join("job.jsonl")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&exported).lines().count(),
        2000,
        "two query pages"
    );
    assert_eq!(without_changed(&exported), without_changed(&written));
    assert!(
        String::from_utf8_lossy(&exported)
            .lines()
            .all(|line| line.contains(r#""epoch":1,"changed":true"#)),
        "every first-epoch item is new"
    );
    let default_format = harness.export(export("job", "", false)).await.unwrap();
    assert_eq!(default_format, exported);
    assert!(
        harness
            .export(export("nobody", "jsonl", false))
            .await
            .unwrap()
            .is_empty()
    );
    harness.stop().await;
}

#[tokio::test]
async fn export_csv_has_sorted_field_columns_and_joined_lists() {
    let harness = Harness::start(|_| {}).await;
    let mut first = page("job", "https://a.example/1", 1, "article");
    first
        .fields
        .insert("author".into(), text("Ann, \"the\" writer"));
    let mut second = page("job", "https://a.example/2", 1, "listing");
    second.fields.remove("tags");
    // A crawled value that a spreadsheet would run as a formula.
    second
        .fields
        .insert("title".into(), text("=HYPERLINK(\"http://evil.example\")"));
    harness
        .archive(vec![batch(1, vec![first, second], vec![])])
        .await;

    let csv = harness.export(export("job", "csv", false)).await.unwrap();
    let expected = "url,handler,fetched_at,author,tags,title\n\
        https://a.example/1,article,2024-05-01T12:00:00.001Z,\"Ann, \"\"the\"\" writer\",a | b,\
        title of https://a.example/1\n\
        https://a.example/2,listing,2024-05-01T12:00:00.001Z,,,\"'=HYPERLINK(\"\"http://evil.example\"\")\"\n";
    assert_eq!(String::from_utf8(csv).unwrap(), expected);
    let empty = harness
        .export(export("nobody", "csv", false))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(empty).unwrap(),
        "url,handler,fetched_at\n"
    );
    harness.stop().await;
}

#[tokio::test]
async fn export_documents_as_json_lines_and_csv() {
    let harness = Harness::start(|_| {}).await;
    let mut with_documents = page("job", "https://a.example/1", 1, "article");
    with_documents.documents = vec![
        document("https://a.example/report.pdf", ""),
        document("https://b.example/data.pdf", "https://a.example/1"),
    ];
    harness
        .archive(vec![batch(1, vec![with_documents], vec![])])
        .await;

    let lines = harness.export(export("job", "jsonl", true)).await.unwrap();
    let expected = "{\"url\":\"https://a.example/report.pdf\",\"type\":\"pdf\",\
        \"found_on\":\"https://a.example/1\"}\n\
        {\"url\":\"https://b.example/data.pdf\",\"type\":\"pdf\",\"found_on\":\"https://a.example/1\"}\n";
    assert_eq!(String::from_utf8(lines).unwrap(), expected);
    let csv = harness.export(export("job", "csv", true)).await.unwrap();
    let expected = "url,type,found_on\n\
        https://a.example/report.pdf,pdf,https://a.example/1\n\
        https://b.example/data.pdf,pdf,https://a.example/1\n";
    assert_eq!(String::from_utf8(csv).unwrap(), expected);

    let mut client = harness.client.clone();
    let request = QueryDocumentsRequest {
        job_id: "job".into(),
        limit: 1,
        page_token: String::new(),
    };
    let first = client
        .query_documents(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.documents.len(), 1);
    let request = QueryDocumentsRequest {
        page_token: first.next_page_token,
        ..request
    };
    let second = client.query_documents(request).await.unwrap().into_inner();
    assert_eq!(second.documents[0].url, "https://b.example/data.pdf");
    assert!(second.next_page_token.is_empty());
    harness.stop().await;
}
