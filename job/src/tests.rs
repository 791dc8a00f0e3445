//! Tests of the job spec: the example file, defaults, every kind of error, compiled rules.
use owlmesh_proto::v1::{
    DocumentRules, FieldRule, FollowRules, Handler, Politeness, RecrawlSchedule,
};
use proptest::prelude::*;

use super::*;
use crate::canonical::canonicalize;

const CATALOGUE: &str = include_str!("../../docs/examples/catalogue.toml");

fn parse(source: &str) -> Result<JobSpec, SpecError> {
    parse_job_toml(source, "job.toml")
}

fn minimal(extra: &str) -> String {
    format!("name = \"t\"\nseeds = [\"http://example.com/\"]\n{extra}")
}

/// The field errors of a spec that must be invalid.
fn field_errors(result: Result<JobSpec, SpecError>) -> Vec<FieldError> {
    match result {
        Err(SpecError::Invalid(invalid)) => invalid.errors,
        other => panic!("expected field errors, got {other:?}"),
    }
}

/// The parse error of a file that must not parse.
fn parse_failure(result: Result<JobSpec, SpecError>) -> ParseError {
    match result {
        Err(SpecError::Parse(error)) => error,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn fields_named(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|error| error.field.as_str()).collect()
}

fn error_at<'a>(errors: &'a [FieldError], field: &str) -> &'a FieldError {
    errors
        .iter()
        .find(|error| error.field == field)
        .unwrap_or_else(|| panic!("no error for {field} in {errors:?}"))
}

fn valid_spec() -> JobSpec {
    JobSpec {
        name: "grpc job".to_owned(),
        seeds: vec!["http://example.com/".to_owned()],
        ..JobSpec::default()
    }
}

fn grpc_field_errors(spec: &JobSpec) -> Vec<FieldError> {
    match validate(spec) {
        Err(SpecError::Invalid(invalid)) => {
            assert_eq!(invalid.origin, None);
            invalid.errors
        }
        other => panic!("expected field errors, got {other:?}"),
    }
}

mod example_file {
    use super::*;

    #[test]
    fn parses_as_written() {
        let spec = parse_job_toml(CATALOGUE, "catalogue.toml").expect("the example is valid");
        assert_eq!(spec.name, "catalogue");
        assert_eq!(
            spec.seeds,
            ["http://127.0.0.2:8081/", "http://127.0.0.3:8082/"]
        );
        assert_eq!(spec.allowed_hosts, ["127.0.0.2:8081", "127.0.0.3:8082"]);
        assert_eq!(spec.max_depth, 50);
        assert_eq!(spec.max_pages, 100_000);
        assert_eq!(spec.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(spec.priority, 0);
    }

    #[test]
    fn keeps_politeness_follow_documents_and_recrawl() {
        let spec = parse_job_toml(CATALOGUE, "catalogue.toml").expect("valid");
        let politeness = spec.politeness.expect("politeness");
        assert_eq!(politeness.obey_robots, Some(true));
        assert_eq!(politeness.delay_ms, 0);
        assert_eq!(politeness.concurrency_per_host, 16);
        assert_eq!(politeness.user_agent, "owlmesh-test");
        let follow = spec.follow.expect("follow");
        assert_eq!(follow.selector, "a[href]");
        assert!(follow.allow.is_empty());
        assert_eq!(follow.deny, [r"\.pdf$"]);
        assert_eq!(spec.documents.expect("documents").types, ["pdf"]);
        let recrawl = spec.recrawl.expect("recrawl");
        assert_eq!(recrawl.every, "24h");
        assert_eq!(recrawl.cron, "");
    }

    #[test]
    fn reads_bare_and_table_fields() {
        let spec = parse_job_toml(CATALOGUE, "catalogue.toml").expect("valid");
        assert_eq!(spec.handlers.len(), 1);
        let handler = &spec.handlers[0];
        assert_eq!(handler.name, "product");
        assert_eq!(handler.pattern, r"^/product/(?P<slug>[^/]+)\.html$");
        let bare = |selector: &str| FieldRule {
            selector: selector.to_owned(),
            ..FieldRule::default()
        };
        assert_eq!(handler.fields.len(), 3);
        assert_eq!(handler.fields["title"], bare("h1"));
        assert_eq!(handler.fields["price"], bare("span.price"));
        let sku = FieldRule {
            selector: "div.product".to_owned(),
            attr: "data-sku".to_owned(),
            html: false,
            many: false,
        };
        assert_eq!(handler.fields["sku"], sku);
    }

    #[test]
    fn parse_job_file_reads_the_file() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/examples/catalogue.toml");
        let spec = parse_job_file(&path).expect("the example is valid");
        assert_eq!(spec, parse(CATALOGUE).expect("valid"));
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = parse_job_file(std::path::Path::new("/no/such/job.toml")).expect_err("missing");
        assert!(matches!(error, SpecError::Read { .. }));
        assert!(
            error
                .to_string()
                .starts_with("cannot read job file /no/such/job.toml: "),
            "{error}"
        );
    }

    #[test]
    fn compiles_into_rules() {
        let spec = parse(CATALOGUE).expect("valid");
        let rules = CompiledJob::compile(&spec).expect("compiles");
        let url = |text: &str| canonicalize(text).expect(text);
        assert!(rules.allows_link(&url("http://127.0.0.2:8081/product/a.html")));
        assert!(!rules.allows_link(&url("http://127.0.0.2:8081/manual.pdf")));
        assert!(!rules.allows_link(&url("http://127.0.0.4:8081/product/a.html")));
        let handler = rules.handler_for(&url("http://127.0.0.3:8082/product/x-1.html"));
        assert_eq!(handler.map(CompiledHandler::name), Some("product"));
        assert!(
            rules
                .handler_for(&url("http://127.0.0.3:8082/about.html"))
                .is_none()
        );
        assert_eq!(rules.recrawl().every_ms(), 24 * 3600 * 1000);
        assert_eq!(
            rules
                .documents()
                .of_url(url("http://127.0.0.2:8081/a/Manual.PDF").as_url()),
            Some("pdf")
        );
    }
}

mod defaults {
    use super::*;

    #[test]
    fn fill_everything_but_name_and_seeds() {
        let spec = parse(&minimal("")).expect("valid");
        assert_eq!(spec.allowed_hosts, ["example.com"]);
        assert_eq!(spec.max_depth, 0);
        assert_eq!(spec.max_pages, 0);
        assert_eq!(spec.max_retries, 3);
        assert_eq!(spec.priority, 0);
        assert!(spec.handlers.is_empty());
        let follow = spec.follow.expect("follow");
        assert_eq!(follow.selector, "a[href]");
        assert!(follow.allow.is_empty() && follow.deny.is_empty());
        assert!(spec.documents.expect("documents").types.is_empty());
        let politeness = spec.politeness.expect("politeness");
        assert_eq!(politeness.obey_robots, Some(true));
        assert_eq!(politeness.delay_ms, 0);
        assert_eq!(politeness.concurrency_per_host, 2);
        assert_eq!(politeness.user_agent, "owlmesh");
        assert_eq!(spec.recrawl.expect("recrawl"), RecrawlSchedule::default());
    }

    #[test]
    fn allowed_hosts_default_to_the_seeds_host_keys_once_each() {
        let seeds = r#"name = "t"
seeds = ["http://A.example/", "https://a.example:443/x", "http://b.example:8080/", "http://a.example/y"]"#;
        let spec = parse(seeds).expect("valid");
        assert_eq!(spec.allowed_hosts, ["a.example", "b.example:8080"]);
    }

    #[test]
    fn fill_a_partial_table() {
        let spec = parse(&minimal("[politeness]\ndelay_ms = 500\n")).expect("valid");
        let politeness = spec.politeness.expect("politeness");
        assert_eq!(politeness.delay_ms, 500);
        assert_eq!(politeness.obey_robots, Some(true));
        assert_eq!(politeness.concurrency_per_host, 2);
        assert_eq!(politeness.user_agent, "owlmesh");
    }

    #[test]
    fn keep_an_explicit_false() {
        let spec = parse(&minimal("[politeness]\nobey_robots = false\n")).expect("valid");
        assert_eq!(
            spec.politeness.expect("politeness").obey_robots,
            Some(false)
        );
    }

    #[test]
    fn fill_a_spec_from_grpc() {
        let spec = with_defaults(valid_spec());
        assert_eq!(spec.allowed_hosts, ["example.com"]);
        assert_eq!(
            spec.follow.expect("follow").selector,
            DEFAULT_FOLLOW_SELECTOR
        );
        let politeness = spec.politeness.expect("politeness");
        assert_eq!(politeness.obey_robots, Some(DEFAULT_OBEY_ROBOTS));
        assert_eq!(
            politeness.concurrency_per_host,
            DEFAULT_CONCURRENCY_PER_HOST
        );
        assert_eq!(politeness.user_agent, DEFAULT_USER_AGENT);
        assert_eq!(spec.max_retries, DEFAULT_MAX_RETRIES);
    }

    #[test]
    fn tidy_hosts_and_document_types() {
        let spec = with_defaults(JobSpec {
            allowed_hosts: vec![" Example.COM:8080 ".to_owned()],
            documents: Some(DocumentRules {
                types: vec![".PDF".to_owned(), "Docx".to_owned()],
            }),
            ..valid_spec()
        });
        assert_eq!(spec.allowed_hosts, ["example.com:8080"]);
        assert_eq!(spec.documents.expect("documents").types, ["pdf", "docx"]);
    }

    #[test]
    fn are_idempotent() {
        let once = with_defaults(valid_spec());
        assert_eq!(with_defaults(once.clone()), once);
        let parsed = parse(CATALOGUE).expect("valid");
        assert_eq!(with_defaults(parsed.clone()), parsed);
    }

    #[test]
    fn validated_fills_and_checks() {
        let spec = validated(valid_spec()).expect("valid");
        assert_eq!(spec, with_defaults(valid_spec()));
        assert!(validated(JobSpec::default()).is_err());
    }
}

mod parse_errors {
    use super::*;

    #[test]
    fn name_file_line_and_column_of_bad_syntax() {
        let error = parse_failure(parse_job_toml("name = \"t\"\nseeds = [\n", "jobs/x.toml"));
        assert_eq!(error.origin, "jobs/x.toml");
        assert_eq!(error.line, Some(2));
        assert_eq!(
            error.to_string(),
            "jobs/x.toml:2:10: unclosed array, expected `]`"
        );
    }

    #[test]
    fn name_an_unknown_key_and_its_path() {
        let error = parse_failure(parse(&minimal("[politeness]\ndelay_ms = 1\ndelay = 5\n")));
        assert_eq!((error.line, error.column), (Some(5), Some(1)));
        assert_eq!(error.key.as_deref(), Some("politeness.delay"));
        assert!(
            error.message.contains("unknown field `delay`"),
            "{}",
            error.message
        );
        assert!(
            error
                .to_string()
                .starts_with("job.toml:5:1: politeness.delay: unknown field")
        );
    }

    #[test]
    fn name_an_unknown_top_level_key() {
        let error = parse_failure(parse(&minimal("max_page = 10\n")));
        assert_eq!(error.line, Some(3));
        assert_eq!(error.key.as_deref(), Some("max_page"));
        assert!(
            error.message.contains("unknown field `max_page`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn name_an_unknown_key_inside_a_field_table() {
        let source = minimal(
            "[[handlers]]\nname = \"h\"\n[handlers.fields]\nsku = { selector = \"div\", atr = \"x\" }\n",
        );
        let error = parse_failure(parse(&source));
        assert_eq!(error.line, Some(6));
        assert_eq!(error.key.as_deref(), Some("handlers[0].fields.sku.atr"));
        assert!(
            error.message.contains("unknown field `atr`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn name_a_negative_number() {
        let error = parse_failure(parse(&minimal("max_depth = -1\n")));
        assert_eq!(error.line, Some(3));
        assert_eq!(error.key.as_deref(), Some("max_depth"));
        assert!(error.message.contains("-1"), "{}", error.message);
    }

    #[test]
    fn name_a_value_of_the_wrong_type() {
        let error = parse_failure(parse(&minimal("[follow]\nallow = \"x\"\n")));
        assert_eq!(error.line, Some(4));
        assert_eq!(error.key.as_deref(), Some("follow.allow"));
        let error = parse_failure(parse("name = \"t\"\nseeds = \"http://a/\"\n"));
        assert_eq!(error.key.as_deref(), Some("seeds"));
        let error = parse_failure(parse(&minimal("[[handlers]]\nfields = { a = 1 }\n")));
        assert_eq!(error.key.as_deref(), Some("handlers[0].fields.a"));
        assert!(
            error.message.contains("CSS selector string"),
            "{}",
            error.message
        );
    }

    #[test]
    fn count_columns_in_characters() {
        let error = parse_failure(parse("name = \"é\" x\n"));
        assert_eq!((error.line, error.column), (Some(1), Some(12)));
    }
}

mod field_errors {
    use super::*;

    #[test]
    fn require_a_name_and_seeds() {
        let errors = field_errors(parse(""));
        assert_eq!(fields_named(&errors), ["name", "seeds"]);
        assert_eq!(errors[0].reason, "a job needs a name");
        assert_eq!(errors[1].reason, "at least one seed URL is required");
        let errors = field_errors(parse("name = \"  \"\nseeds = [\"http://a/\"]\n"));
        assert_eq!(fields_named(&errors), ["name"]);
        assert_eq!(errors[0].line, Some(1));
    }

    #[test]
    fn name_a_seed_that_is_not_http() {
        let source =
            "name = \"t\"\nseeds = [\n  \"http://a/\",\n  \"ftp://b/\",\n  \"not a url\",\n]\n";
        let errors = field_errors(parse(source));
        assert_eq!(fields_named(&errors), ["seeds[1]", "seeds[2]"]);
        assert_eq!(errors[0].line, Some(4));
        assert_eq!(
            errors[0].reason,
            "expected an http or https URL, found scheme \"ftp\""
        );
        assert_eq!(errors[1].line, Some(5));
        assert!(
            errors[1]
                .reason
                .starts_with("expected an http or https URL, found \"not a url\"")
        );
    }

    #[test]
    fn name_a_selector_that_does_not_parse() {
        let source = minimal(
            "[[handlers]]\nname = \"h\"\n[handlers.fields]\ntitle = \"h1\"\nprice = \"span[\"\n\
             sku = { selector = \"div >> p\", attr = \"data-sku\" }\n",
        );
        let errors = field_errors(parse(&source));
        assert_eq!(
            fields_named(&errors),
            [
                "handlers[0].fields.price.selector",
                "handlers[0].fields.sku.selector"
            ]
        );
        assert_eq!(errors[0].line, Some(7));
        assert_eq!(errors[1].line, Some(8));
        assert!(
            errors[0]
                .reason
                .starts_with("not a valid CSS selector: \"span[\""),
            "{errors:?}"
        );
    }

    #[test]
    fn say_what_is_wrong_with_a_selector_in_plain_words() {
        for (selector, problem) in [
            (
                "div >",
                "a combinator (>, +, ~ or a space) has nothing after it",
            ),
            (
                "a:frobnicate",
                "an unknown or unsupported pseudo-class or pseudo-element",
            ),
            ("span[", "the selector ends too early"),
            (
                "p..x",
                "a class selector needs a name after the dot, as in .price",
            ),
        ] {
            let errors = field_errors(parse(&minimal(&format!(
                "[follow]\nselector = {selector:?}\n"
            ))));
            let reason = &errors[0].reason;
            assert!(
                reason.ends_with(&format!("({problem})")),
                "{selector}: {reason}"
            );
            assert!(!reason.contains("report"), "{selector}: {reason}");
        }
    }

    #[test]
    fn name_the_follow_selector() {
        let errors = field_errors(parse(&minimal("[follow]\nselector = \"a[\"\n")));
        assert_eq!(fields_named(&errors), ["follow.selector"]);
        assert_eq!(errors[0].line, Some(4));
    }

    #[test]
    fn name_regexes_that_do_not_compile() {
        let source = minimal(
            "[follow]\nallow = ['^/ok', '(']\ndeny = ['[z-a]']\n[[handlers]]\nname = \"h\"\npattern = '(?P<x'\n",
        );
        let errors = field_errors(parse(&source));
        assert_eq!(
            fields_named(&errors),
            ["follow.allow[1]", "follow.deny[0]", "handlers[0].pattern"]
        );
        let lines: Vec<_> = errors.iter().map(|error| error.line).collect();
        assert_eq!(lines, [Some(4), Some(5), Some(8)]);
        for error in &errors {
            assert!(
                error.reason.starts_with("not a valid regular expression: "),
                "{error}"
            );
            assert!(!error.reason.contains('\n'), "{error}");
        }
    }

    #[test]
    fn name_a_handler_without_a_name_and_duplicates() {
        let source = minimal(
            "[[handlers]]\npattern = '^/a'\n[[handlers]]\nname = \"x\"\n[[handlers]]\nname = \"x\"\n",
        );
        let errors = field_errors(parse(&source));
        assert_eq!(
            fields_named(&errors),
            ["handlers[0].name", "handlers[2].name"]
        );
        assert_eq!(errors[0].reason, "a handler needs a name");
        assert_eq!(
            errors[1].reason,
            "duplicate handler name \"x\", also used by handlers[1]"
        );
        assert_eq!(errors[1].line, Some(8));
    }

    #[test]
    fn name_field_rules_that_conflict_or_lack_a_selector() {
        let source = minimal(
            "[[handlers]]\nname = \"h\"\n[handlers.fields]\n\
             a = { attr = \"href\" }\nb = { selector = \"p\", attr = \"bad name\" }\n\
             c = { selector = \"p\", attr = \"href\", html = true }\n",
        );
        let errors = field_errors(parse(&source));
        assert_eq!(
            fields_named(&errors),
            [
                "handlers[0].fields.a.selector",
                "handlers[0].fields.b.attr",
                "handlers[0].fields.c.html"
            ]
        );
        assert_eq!(errors[0].reason, "a field needs a CSS selector");
    }

    #[test]
    fn reject_negative_and_absurd_numbers() {
        let source = minimal(
            "max_depth = 1000000\nmax_pages = 9000000000000000000\nmax_retries = 1000\n\
             [politeness]\ndelay_ms = 86400000\nconcurrency_per_host = 100000\n",
        );
        let errors = field_errors(parse(&source));
        assert_eq!(
            fields_named(&errors),
            [
                "max_depth",
                "max_pages",
                "max_retries",
                "politeness.delay_ms",
                "politeness.concurrency_per_host"
            ]
        );
        assert_eq!(
            error_at(&errors, "max_depth").reason,
            "must be at most 100000 (0 means unlimited)"
        );
        let error = parse_failure(parse(&minimal("[politeness]\ndelay_ms = -5\n")));
        assert_eq!(error.key.as_deref(), Some("politeness.delay_ms"));
    }

    #[test]
    fn reject_explicit_values_that_would_read_as_defaults() {
        let source = minimal(
            "max_retries = 0\n[follow]\nselector = \"\"\n[politeness]\nconcurrency_per_host = 0\nuser_agent = \" \"\n",
        );
        let errors = field_errors(parse(&source));
        assert_eq!(
            fields_named(&errors),
            [
                "max_retries",
                "follow.selector",
                "politeness.concurrency_per_host",
                "politeness.user_agent"
            ]
        );
        assert_eq!(errors[0].line, Some(3));
    }

    #[test]
    fn reject_a_user_agent_with_a_line_break() {
        let errors = field_errors(parse(&minimal("[politeness]\nuser_agent = \"a\\nb\"\n")));
        assert_eq!(fields_named(&errors), ["politeness.user_agent"]);
    }

    #[test]
    fn reject_bad_allowed_hosts() {
        let source = "name = \"t\"\nseeds = [\"http://a/\"]\n\
                      allowed_hosts = [\"a\", \"http://b/\", \"c:99999\", \"\", \"d/x\", \"[::1]:80\"]\n";
        let errors = field_errors(parse(source));
        assert_eq!(
            fields_named(&errors),
            [
                "allowed_hosts[1]",
                "allowed_hosts[2]",
                "allowed_hosts[3]",
                "allowed_hosts[4]"
            ]
        );
    }

    #[test]
    fn accept_any_lowercase_extension_or_media_type_as_a_document_type() {
        let spec = parse(&minimal(
            "[documents]\ntypes = [\"pdf\", \"epub\", \"x3d\", \".DOCX\"]\n",
        ))
        .expect("valid");
        assert_eq!(
            spec.documents.expect("documents").types,
            ["pdf", "epub", "x3d", "docx"]
        );
        let errors = field_errors(parse(&minimal(
            "[documents]\ntypes = [\"pdf\", \"a/b/c\", \"\", \"application/pdf\", \"p df\"]\n",
        )));
        assert_eq!(
            fields_named(&errors),
            [
                "documents.types[1]",
                "documents.types[2]",
                "documents.types[4]"
            ]
        );
    }

    #[test]
    fn reject_both_every_and_cron() {
        let errors = field_errors(parse(&minimal(
            "[recrawl]\nevery = \"1h\"\ncron = \"0 0 3 * * *\"\n",
        )));
        assert_eq!(fields_named(&errors), ["recrawl"]);
        assert_eq!(errors[0].reason, "give either every or cron, not both");
        assert_eq!(errors[0].line, Some(3));
    }

    #[test]
    fn reject_a_bad_duration_or_cron() {
        let errors = field_errors(parse(&minimal("[recrawl]\nevery = \"daily\"\n")));
        assert_eq!(fields_named(&errors), ["recrawl.every"]);
        assert!(
            errors[0]
                .reason
                .starts_with("expected a duration such as \"24h\""),
            "{errors:?}"
        );
        let errors = field_errors(parse(&minimal("[recrawl]\nevery = \"0s\"\n")));
        assert_eq!(errors[0].reason, "must be longer than zero");
        let errors = field_errors(parse(&minimal("[recrawl]\ncron = \"every day\"\n")));
        assert_eq!(fields_named(&errors), ["recrawl.cron"]);
        assert_eq!(errors[0].line, Some(4));
    }

    #[test]
    fn are_all_collected_and_listed_one_per_line() {
        let source =
            "seeds = [\"gopher://x/\"]\n[follow]\ndeny = ['(']\n[recrawl]\nevery = \"soon\"\n";
        let error = parse(source).expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "invalid job spec in job.toml:\n  \
             name: a job needs a name\n  \
             seeds[0]: expected an http or https URL, found scheme \"gopher\" (line 1)\n  \
             follow.deny[0]: not a valid regular expression: unclosed group (line 3)\n  \
             recrawl.every: expected a duration such as \"24h\" or \"90m\", found \"soon\" \
             (expected number at 0) (line 5)"
        );
    }
}

mod grpc_specs {
    use super::*;

    #[test]
    fn an_empty_spec_names_the_required_fields() {
        let errors = grpc_field_errors(&JobSpec::default());
        assert_eq!(fields_named(&errors), ["name", "seeds"]);
        assert!(errors.iter().all(|error| error.line.is_none()));
    }

    #[test]
    fn a_minimal_spec_is_valid() {
        validate(&valid_spec()).expect("valid");
    }

    #[test]
    fn forged_log_lines_and_credentials_in_seeds_are_refused() {
        let spec = JobSpec {
            name: "shop\nERROR forged".to_owned(),
            seeds: vec![
                "http://example.com/".to_owned(),
                "https://admin:hunter2@shop.example/".to_owned(),
                "https://token@shop.example/".to_owned(),
            ],
            ..valid_spec()
        };
        let errors = grpc_field_errors(&spec);
        assert_eq!(fields_named(&errors), ["name", "seeds[1]", "seeds[2]"]);
        assert!(
            error_at(&errors, "name")
                .reason
                .contains("control characters")
        );
        assert!(error_at(&errors, "seeds[1]").reason.contains("credentials"));
    }

    #[test]
    fn field_paths_quote_keys_that_are_not_bare() {
        let mut fields = std::collections::HashMap::new();
        fields.insert("unit price".to_owned(), FieldRule::default());
        fields.insert(
            String::new(),
            FieldRule {
                selector: "p".to_owned(),
                ..FieldRule::default()
            },
        );
        let spec = JobSpec {
            handlers: vec![Handler {
                name: "h".to_owned(),
                pattern: String::new(),
                fields,
            }],
            ..valid_spec()
        };
        let errors = grpc_field_errors(&spec);
        assert_eq!(
            fields_named(&errors),
            [
                "handlers[0].fields.\"\"",
                "handlers[0].fields.\"unit price\".selector"
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let spec = JobSpec {
            name: String::new(),
            seeds: vec!["mailto:x@y".to_owned()],
            follow: Some(FollowRules {
                selector: "::".to_owned(),
                allow: vec!["(".to_owned()],
                deny: vec![],
            }),
            politeness: Some(Politeness {
                delay_ms: u64::MAX,
                ..Politeness::default()
            }),
            recrawl: Some(RecrawlSchedule {
                every: "1h".to_owned(),
                cron: "0 0 3 * * *".to_owned(),
            }),
            ..JobSpec::default()
        };
        let errors = grpc_field_errors(&spec);
        assert_eq!(
            fields_named(&errors),
            [
                "name",
                "seeds[0]",
                "follow.selector",
                "follow.allow[0]",
                "politeness.delay_ms",
                "recrawl"
            ]
        );
        let text = SpecError::from(InvalidSpec {
            origin: None,
            errors,
        })
        .to_string();
        assert!(
            text.starts_with("invalid job spec:\n  name: a job needs a name\n"),
            "{text}"
        );
    }
}

/// Each limit of a spec: a spec at the limit is accepted, one past it is refused naming the
/// field and the limit.
mod limits {
    use std::collections::HashMap;

    use prost::Message;

    use super::*;

    fn accepted(spec: &JobSpec) {
        if let Err(error) = validate(spec) {
            panic!("expected a valid spec, got {error}");
        }
    }

    /// The one error of a spec that must be refused: its field and its reason.
    fn refused(spec: &JobSpec) -> (String, String) {
        let errors = grpc_field_errors(spec);
        assert_eq!(errors.len(), 1, "{errors:?}");
        (errors[0].field.clone(), errors[0].reason.clone())
    }

    fn seeds(count: usize) -> Vec<String> {
        (0..count)
            .map(|index| format!("http://example.com/{index}"))
            .collect()
    }

    fn handler(name: &str, pattern: &str, fields: HashMap<String, FieldRule>) -> Handler {
        Handler {
            name: name.to_owned(),
            pattern: pattern.to_owned(),
            fields,
        }
    }

    fn with_pattern(pattern: &str) -> JobSpec {
        JobSpec {
            handlers: vec![handler("h", pattern, HashMap::new())],
            ..valid_spec()
        }
    }

    fn with_selector(selector: &str) -> JobSpec {
        let fields = [(
            "title".to_owned(),
            FieldRule {
                selector: selector.to_owned(),
                ..FieldRule::default()
            },
        )];
        JobSpec {
            handlers: vec![handler("h", "^/", fields.into())],
            ..valid_spec()
        }
    }

    fn with_follow(follow: FollowRules) -> JobSpec {
        JobSpec {
            follow: Some(follow),
            ..valid_spec()
        }
    }

    #[test]
    fn seeds_are_counted() {
        accepted(&JobSpec {
            seeds: seeds(SEEDS_LIMIT),
            ..valid_spec()
        });
        let (field, reason) = refused(&JobSpec {
            seeds: seeds(SEEDS_LIMIT + 1),
            ..valid_spec()
        });
        assert_eq!(field, "seeds");
        assert!(reason.contains("at most 10000 seeds"), "{reason}");
    }

    #[test]
    fn a_seed_is_as_long_as_the_longest_followed_link() {
        let prefix = "http://example.com/";
        let seed = |length: usize| format!("{prefix}{}", "a".repeat(length - prefix.len()));
        accepted(&JobSpec {
            seeds: vec![seed(SEED_LENGTH_LIMIT)],
            ..valid_spec()
        });
        let (field, reason) = refused(&JobSpec {
            seeds: vec!["http://example.com/".into(), seed(SEED_LENGTH_LIMIT + 1)],
            ..valid_spec()
        });
        assert_eq!(field, "seeds[1]");
        assert!(reason.contains("at most 2048 bytes"), "{reason}");
    }

    #[test]
    fn allowed_hosts_are_counted_and_each_bounded() {
        let hosts = |count: usize| -> Vec<String> {
            (0..count)
                .map(|index| format!("h{index}.example"))
                .collect()
        };
        accepted(&JobSpec {
            allowed_hosts: hosts(ALLOWED_HOSTS_LIMIT),
            ..valid_spec()
        });
        let (field, reason) = refused(&JobSpec {
            allowed_hosts: hosts(ALLOWED_HOSTS_LIMIT + 1),
            ..valid_spec()
        });
        assert_eq!(field, "allowed_hosts");
        assert!(reason.contains("at most 1000 hosts"), "{reason}");
        // The longest DNS name (253 characters) with the largest port.
        let name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        let longest = format!("{name}:65535");
        assert_eq!(longest.len(), HOST_LENGTH_LIMIT);
        accepted(&JobSpec {
            allowed_hosts: vec![longest],
            ..valid_spec()
        });
        let (field, reason) = refused(&JobSpec {
            allowed_hosts: vec![format!("{name}b:65535")],
            ..valid_spec()
        });
        assert_eq!(field, "allowed_hosts[0]");
        assert!(reason.contains("at most 259 bytes"), "{reason}");
    }

    #[test]
    fn seed_hosts_count_as_allowed_hosts_and_the_reason_says_so() {
        let seeds = (0..=ALLOWED_HOSTS_LIMIT)
            .map(|index| format!("http://h{index}.example/"))
            .collect();
        let (field, reason) = refused(&JobSpec {
            seeds,
            ..valid_spec()
        });
        assert_eq!(field, "allowed_hosts");
        assert!(reason.contains("the seeds' hosts"), "{reason}");
    }

    #[test]
    fn handlers_and_their_fields_are_counted() {
        let handlers = |count: usize| -> Vec<Handler> {
            (0..count)
                .map(|index| handler(&format!("h{index}"), &format!("^/{index}$"), HashMap::new()))
                .collect()
        };
        accepted(&JobSpec {
            handlers: handlers(HANDLERS_LIMIT),
            ..valid_spec()
        });
        let (field, reason) = refused(&JobSpec {
            handlers: handlers(HANDLERS_LIMIT + 1),
            ..valid_spec()
        });
        assert_eq!(field, "handlers");
        assert!(reason.contains("at most 100 handlers"), "{reason}");

        let fields = |count: usize| -> HashMap<String, FieldRule> {
            (0..count)
                .map(|index| {
                    let rule = FieldRule {
                        selector: format!(".f{index}"),
                        ..FieldRule::default()
                    };
                    (format!("f{index}"), rule)
                })
                .collect()
        };
        accepted(&JobSpec {
            handlers: vec![handler("h", "^/", fields(FIELDS_LIMIT))],
            ..valid_spec()
        });
        let (field, reason) = refused(&JobSpec {
            handlers: vec![handler("h", "^/", fields(FIELDS_LIMIT + 1))],
            ..valid_spec()
        });
        assert_eq!(field, "handlers[0].fields");
        assert!(reason.contains("at most 100 fields"), "{reason}");
    }

    #[test]
    fn handler_and_field_names_are_bounded() {
        let long = "n".repeat(NAME_LENGTH_LIMIT);
        accepted(&JobSpec {
            handlers: vec![handler(&long, "^/", HashMap::new())],
            ..valid_spec()
        });
        let longer = format!("{long}n");
        let (field, _) = refused(&JobSpec {
            handlers: vec![handler(&longer, "^/", HashMap::new())],
            ..valid_spec()
        });
        assert_eq!(field, "handlers[0].name");
        let rule = FieldRule {
            selector: "h1".into(),
            ..FieldRule::default()
        };
        let fields = [(longer.clone(), rule)].into();
        let (field, _) = refused(&JobSpec {
            handlers: vec![handler("h", "^/", fields)],
            ..valid_spec()
        });
        assert_eq!(field, format!("handlers[0].fields.{longer}"));
    }

    #[test]
    fn allow_deny_and_document_types_are_counted() {
        let patterns = |count: usize| -> Vec<String> {
            (0..count).map(|index| format!("/p{index}/")).collect()
        };
        accepted(&with_follow(FollowRules {
            allow: patterns(PATTERNS_LIMIT),
            deny: patterns(PATTERNS_LIMIT),
            ..FollowRules::default()
        }));
        let (field, reason) = refused(&with_follow(FollowRules {
            allow: patterns(PATTERNS_LIMIT + 1),
            ..FollowRules::default()
        }));
        assert_eq!(field, "follow.allow");
        assert!(reason.contains("at most 100 patterns"), "{reason}");
        let (field, _) = refused(&with_follow(FollowRules {
            deny: patterns(PATTERNS_LIMIT + 1),
            ..FollowRules::default()
        }));
        assert_eq!(field, "follow.deny");

        let types = |count: usize| -> Option<DocumentRules> {
            Some(DocumentRules {
                types: (0..count).map(|index| format!("t{index}")).collect(),
            })
        };
        accepted(&JobSpec {
            documents: types(PATTERNS_LIMIT),
            ..valid_spec()
        });
        let (field, _) = refused(&JobSpec {
            documents: types(PATTERNS_LIMIT + 1),
            ..valid_spec()
        });
        assert_eq!(field, "documents.types");
    }

    #[test]
    fn a_pattern_is_bounded_in_length() {
        accepted(&with_pattern(&"a".repeat(PATTERN_LENGTH_LIMIT)));
        let (field, reason) = refused(&with_pattern(&"a".repeat(PATTERN_LENGTH_LIMIT + 1)));
        assert_eq!(field, "handlers[0].pattern");
        assert!(reason.contains("at most 4096 bytes"), "{reason}");
        let (field, _) = refused(&with_follow(FollowRules {
            deny: vec!["x".into(), "a".repeat(PATTERN_LENGTH_LIMIT + 1)],
            ..FollowRules::default()
        }));
        assert_eq!(field, "follow.deny[1]");
    }

    #[test]
    fn a_pattern_is_bounded_in_compiled_size_far_below_the_regex_default() {
        // About 0.7 MiB and 1.4 MiB compiled.
        accepted(&with_pattern("^/a{1,10000}$"));
        let (field, reason) = refused(&with_pattern("^/a{1,20000}$"));
        assert_eq!(field, "handlers[0].pattern");
        assert!(
            reason.contains("compiles to more than 1048576 bytes"),
            "{reason}"
        );
        // About 2.5 MiB: the regex crate's own 10 MiB limit would let it through.
        assert!(regex::Regex::new(r"\w{1,50}").is_ok());
        let (field, _) = refused(&with_pattern(r"\w{1,50}"));
        assert_eq!(field, "handlers[0].pattern");
        let (field, reason) = refused(&with_follow(FollowRules {
            allow: vec!["(a{1,1000}){1,1000}".into()],
            ..FollowRules::default()
        }));
        assert_eq!(field, "follow.allow[0]");
        assert!(reason.contains("compiles to more than"), "{reason}");
    }

    #[test]
    fn an_allow_or_deny_list_is_bounded_in_compiled_size_as_a_whole() {
        // Each about 0.7 MiB, so each passes alone; together they pass the set's limit.
        let big = |count: usize| vec!["^/a{1,10000}$".to_owned(); count];
        accepted(&with_follow(FollowRules {
            deny: big(5),
            ..FollowRules::default()
        }));
        let (field, reason) = refused(&with_follow(FollowRules {
            deny: big(7),
            ..FollowRules::default()
        }));
        assert_eq!(field, "follow.deny");
        assert!(reason.contains("too large together"), "{reason}");
    }

    #[test]
    fn a_selector_is_bounded_in_length() {
        // One element with many classes: shallow, but long.
        let selector = |length: usize| format!("a{}", ".k".repeat((length - 1) / 2));
        let longest = format!("{}k", selector(SELECTOR_LENGTH_LIMIT - 1));
        assert_eq!(longest.len(), SELECTOR_LENGTH_LIMIT);
        accepted(&with_selector(&longest));
        let (field, reason) = refused(&with_selector(&format!("{longest}k")));
        assert_eq!(field, "handlers[0].fields.title.selector");
        assert!(reason.contains("at most 1024 bytes"), "{reason}");
    }

    #[test]
    fn a_selector_is_bounded_in_depth() {
        let chain = |depth: usize| vec!["div"; depth].join(" > ");
        accepted(&with_selector(&chain(SELECTOR_DEPTH_LIMIT)));
        let (field, reason) = refused(&with_selector(&chain(SELECTOR_DEPTH_LIMIT + 1)));
        assert_eq!(field, "handlers[0].fields.title.selector");
        assert!(reason.contains("at most 32 deep"), "{reason}");
        assert!(reason.contains("found 33"), "{reason}");
        let nested =
            |depth: usize| format!("{}p{}", ":is(".repeat(depth - 1), ")".repeat(depth - 1));
        accepted(&with_selector(&nested(SELECTOR_DEPTH_LIMIT)));
        let (field, _) = refused(&with_selector(&nested(SELECTOR_DEPTH_LIMIT + 1)));
        assert_eq!(field, "handlers[0].fields.title.selector");
        let (field, _) = refused(&with_follow(FollowRules {
            selector: format!("a:has({})", chain(SELECTOR_DEPTH_LIMIT)),
            ..FollowRules::default()
        }));
        assert_eq!(field, "follow.selector");
    }

    /// `spec` with seeds added until it encodes to exactly `size` bytes.
    fn padded_to(mut spec: JobSpec, size: usize) -> JobSpec {
        let prefix = "http://example.com/";
        let seed = |length: usize| format!("{prefix}{}", "p".repeat(length - prefix.len()));
        // A seed of 128 to 2,048 bytes costs its length and 3 bytes of tag and length.
        while size - spec.encoded_len() > 2 * (SEED_LENGTH_LIMIT + 3) {
            spec.seeds.push(seed(SEED_LENGTH_LIMIT));
        }
        let rest = size - spec.encoded_len();
        spec.seeds.push(seed(rest / 2 - 3));
        spec.seeds.push(seed(rest - rest / 2 - 3));
        assert_eq!(spec.encoded_len(), size);
        spec
    }

    #[test]
    fn the_whole_spec_is_bounded_in_bytes() {
        // Measured with its defaults filled in, as it is stored.
        accepted(&padded_to(with_defaults(valid_spec()), SPEC_BYTES_LIMIT));
        let spec = padded_to(with_defaults(valid_spec()), SPEC_BYTES_LIMIT + 1);
        let (field, reason) = refused(&spec);
        assert_eq!(field, "");
        assert_eq!(
            reason,
            "the whole spec must be at most 4194304 bytes encoded, found 4194305"
        );
        let text = validate(&spec).expect_err("too large").to_string();
        assert_eq!(
            text,
            "invalid job spec:\n  the whole spec must be at most 4194304 bytes encoded, \
             found 4194305"
        );
    }

    #[test]
    fn a_job_file_names_the_line_of_a_field_past_its_limit() {
        let deep = vec!["div"; SELECTOR_DEPTH_LIMIT + 1].join(" ");
        let source = minimal(&format!(
            "\n[[handlers]]\nname = \"h\"\npattern = \"^/\"\n[handlers.fields]\ntitle = \"{deep}\"\n"
        ));
        let errors = field_errors(parse(&source));
        let error = error_at(&errors, "handlers[0].fields.title.selector");
        assert_eq!(error.line, Some(8));
        assert!(error.reason.contains("at most 32 deep"), "{error:?}");
    }
}

mod compiled_rules {
    use super::*;

    fn rules(extra: &str) -> CompiledJob {
        let spec = parse(&minimal(extra)).expect("valid");
        CompiledJob::compile(&spec).expect("compiles")
    }

    fn url(text: &str) -> crate::canonical::CanonicalUrl {
        canonicalize(text).expect(text)
    }

    #[test]
    fn links_need_an_allowed_host() {
        let rules = rules("allowed_hosts = [\"example.com\", \"Other.example:8080\"]\n");
        assert!(rules.allows_link(&url("http://example.com/a")));
        assert!(rules.allows_link(&url("https://EXAMPLE.com:443/a")));
        assert!(rules.allows_link(&url("http://other.example:8080/")));
        assert!(!rules.allows_link(&url("http://other.example/")));
        // An entry without a port allows its host on every port.
        assert!(rules.allows_link(&url("http://example.com:8080/")));
        assert!(!rules.allows_link(&url("http://sub.example.com/")));
    }

    #[test]
    fn links_must_match_an_allow_pattern_when_there_are_any() {
        let rules = rules("[follow]\nallow = ['/product/', '/list\\?page=']\n");
        assert!(rules.allows_link(&url("http://example.com/product/1")));
        assert!(rules.allows_link(&url("http://example.com/list?page=2")));
        assert!(!rules.allows_link(&url("http://example.com/about")));
    }

    #[test]
    fn deny_wins_over_allow() {
        let rules = rules("[follow]\nallow = ['/product/']\ndeny = ['\\.pdf$', 'print=1']\n");
        assert!(rules.allows_link(&url("http://example.com/product/1")));
        assert!(!rules.allows_link(&url("http://example.com/product/1.pdf")));
        assert!(!rules.allows_link(&url("http://example.com/product/1?print=1")));
    }

    #[test]
    fn the_first_matching_handler_wins() {
        let rules = rules(
            "[[handlers]]\nname = \"special\"\npattern = '^/product/special'\n\
             [[handlers]]\nname = \"product\"\npattern = '^/product/'\n\
             [handlers.fields]\nz = \"p\"\na = { selector = \"div\", html = true, many = true }\n",
        );
        let pick = |text: &str| rules.handler_for(&url(text)).map(CompiledHandler::name);
        assert_eq!(
            pick("http://example.com/product/special-1"),
            Some("special")
        );
        assert_eq!(pick("http://example.com/product/2"), Some("product"));
        assert_eq!(pick("http://example.com/"), None);
        let product = &rules.handlers()[1];
        let names: Vec<_> = product.fields().iter().map(CompiledField::name).collect();
        assert_eq!(names, ["a", "z"]);
        assert!(product.fields()[0].html() && product.fields()[0].many());
        assert_eq!(product.fields()[0].attr(), None);
    }

    #[test]
    fn handler_patterns_see_the_query() {
        let rules = rules("[[handlers]]\nname = \"search\"\npattern = '^/s\\?q=(?P<q>\\w+)$'\n");
        let handler = rules
            .handler_for(&url("http://example.com/s?q=owls#x"))
            .expect("match");
        let captures = handler.pattern().captures("/s?q=owls").expect("captures");
        assert_eq!(&captures["q"], "owls");
    }

    #[test]
    fn document_types_match_the_extension_and_the_media_type() {
        let rules = rules("[documents]\ntypes = [\"pdf\", \"csv\"]\n");
        assert_eq!(rules.document_types(), ["pdf", "csv"]);
        let of_url = |text: &str| rules.documents().of_url(url(text).as_url());
        assert_eq!(of_url("http://example.com/a/b.csv?x=1"), Some("csv"));
        assert_eq!(of_url("http://example.com/a.pdf/"), None);
        assert_eq!(of_url("http://example.com/a.html"), None);
        assert_eq!(
            rules.documents().of_content_type("application/pdf"),
            Some("pdf")
        );
    }

    #[test]
    fn follow_selector_is_compiled() {
        let rules = rules("[follow]\nselector = \"nav a[href]\"\n");
        let html =
            scraper::Html::parse_document("<nav><a href=\"/x\">x</a></nav><a href=\"/y\">y</a>");
        assert_eq!(html.select(rules.follow_selector()).count(), 1);
    }

    #[test]
    fn can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<CompiledJob>();
        assert_send_sync::<SpecError>();
    }

    #[test]
    fn no_schedule_means_never() {
        let rules = rules("");
        assert!(matches!(rules.recrawl(), Recrawl::Never));
        assert_eq!(rules.recrawl().every_ms(), 0);
        assert_eq!(rules.recrawl().next_epoch_at(1_000, 2_000), 0, "never");
    }

    #[test]
    fn every_adds_the_interval() {
        let rules = rules("[recrawl]\nevery = \"90m\"\n");
        let start = 1_000_000;
        assert_eq!(rules.recrawl().every_ms(), 90 * 60 * 1000);
        assert_eq!(
            rules.recrawl().next_epoch_at(start, start),
            start + 5_400_000
        );
    }

    #[test]
    fn cron_gives_the_next_scheduled_time_in_utc() {
        let rules = rules("[recrawl]\ncron = \"0 0 3 * * *\"\n");
        assert_eq!(rules.recrawl().every_ms(), 0);
        assert_eq!(rules.recrawl().cron_source(), "0 0 3 * * *");
        // 2024-01-01T12:00:00Z; the next 03:00 UTC is 2024-01-02T03:00:00Z.
        let noon = 1_704_110_400_000;
        let next = rules.recrawl().next_epoch_at(0, noon);
        assert_eq!(next, 1_704_164_400_000);
        let after_next = rules.recrawl().next_epoch_at(0, next);
        assert_eq!(after_next, next + 24 * 3600 * 1000);
    }
}

/// Lines a job file might contain: real keys and tables with values of every kind.
fn job_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "seeds",
        "allowed_hosts",
        "max_depth",
        "max_pages",
        "priority",
        "max_retries",
        "selector",
        "allow",
        "deny",
        "pattern",
        "fields",
        "types",
        "every",
        "cron",
        "delay_ms",
        "concurrency_per_host",
        "user_agent",
        "obey_robots",
        "title",
        "attr",
        "html",
        "many",
    ]);
    let value = prop_oneof![
        Just("\"h1\"".to_owned()),
        Just("\"http://a/\"".to_owned()),
        Just("[\"http://a/\", 'x']".to_owned()),
        Just("{ selector = \"p\", attr = \"x\" }".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("true".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("'('".to_owned()),
        "\\PC{0,12}".prop_map(|text| format!("{text:?}")),
    ];
    let table = prop::sample::select(vec![
        "[follow]",
        "[politeness]",
        "[recrawl]",
        "[documents]",
        "[[handlers]]",
        "[handlers.fields]",
        "[x]",
        "[[seeds]]",
    ]);
    prop_oneof![
        (key, value).prop_map(|(key, value)| format!("{key} = {value}")),
        table.prop_map(str::to_owned),
        "\\PC{0,20}",
    ]
}

proptest! {
    #[test]
    fn parsing_never_panics_on_arbitrary_text(source in "\\PC{0,200}") {
        let _ = parse_job_toml(&source, "fuzz.toml");
    }

    #[test]
    fn parsing_never_panics_on_job_like_files(lines in prop::collection::vec(job_line(), 0..16)) {
        let source = lines.join("\n");
        match parse_job_toml(&source, "fuzz.toml") {
            Ok(spec) => {
                prop_assert!(validate(&spec).is_ok());
                prop_assert_eq!(with_defaults(spec.clone()), spec);
            }
            Err(SpecError::Parse(error)) => {
                prop_assert_eq!(error.origin, "fuzz.toml");
                prop_assert!(error.line.is_some());
            }
            Err(SpecError::Invalid(invalid)) => prop_assert!(!invalid.errors.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

mod recrawl_schedule {
    use owlmesh_proto::v1::RecrawlSchedule;

    use super::*;

    fn schedule(every: &str, cron: &str) -> RecrawlSchedule {
        RecrawlSchedule {
            every: every.to_owned(),
            cron: cron.to_owned(),
        }
    }

    fn stored(every: &str, cron: &str) -> Recrawl {
        let recrawl = Recrawl::of_schedule(&schedule(every, cron)).expect("valid schedule");
        Recrawl::from_stored(recrawl.every_ms(), recrawl.cron_source()).expect("stored")
    }

    #[test]
    fn interval_counts_from_the_epoch_start() {
        let recrawl = stored("90m", "");
        assert_eq!(recrawl.next_epoch_at(1_000, 2_000), 1_000 + 90 * 60 * 1000);
        // An epoch that outlasted its interval is followed at once.
        assert_eq!(recrawl.next_epoch_at(1_000, 10_000_000), 10_000_000);
    }

    #[test]
    fn cron_fires_after_now() {
        let recrawl = stored("", "0 0 3 * * *");
        // 2024-01-01T00:00:00Z, then 03:00 the same day.
        let midnight = 1_704_067_200_000;
        assert_eq!(
            recrawl.next_epoch_at(0, midnight),
            midnight + 3 * 3600 * 1000
        );
    }

    #[test]
    fn no_schedule_means_no_next_epoch() {
        assert_eq!(stored("", "").next_epoch_at(1, 2), 0);
        assert!(matches!(Recrawl::from_stored(0, ""), Some(Recrawl::Never)));
    }

    #[test]
    fn rejects_unreadable_schedules() {
        assert!(Recrawl::of_schedule(&schedule("soon", "")).is_err());
        assert!(Recrawl::of_schedule(&schedule("", "every day")).is_err());
        assert!(Recrawl::of_schedule(&schedule("1h", "0 0 3 * * *")).is_err());
        assert!(Recrawl::of_schedule(&schedule("0s", "")).is_err());
        assert!(Recrawl::from_stored(0, "every day").is_none());
    }
}
