//! The `owlmesh` command line: help, bad flags and busy ports give one clear line.

use std::process::Command;

fn owlmesh(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_owlmesh"))
        .args(args)
        .output()
        .expect("run owlmesh")
}

#[test]
fn help_lists_the_subcommands() {
    let output = owlmesh(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("directory"), "{help}");
}

#[test]
fn an_unknown_flag_is_named_and_fails() {
    let output = owlmesh(&["directory", "--no-such-flag"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn an_unknown_durability_level_is_named_with_the_levels_there_are() {
    for service in ["dispatcher", "archiver", "up"] {
        let output = owlmesh(&[service, "--durability", "fsync"]);
        assert!(!output.status.success(), "{service}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("must be power-loss or process-crash, not \"fsync\""),
            "{service}: {stderr}"
        );
    }
}

#[test]
fn up_takes_only_postgresql_for_its_databases_and_says_sqlite_is_the_default() {
    for flag in ["--database", "--archive-database"] {
        for url in ["sqlite://frontier.sqlite3", "frontier.sqlite3"] {
            let output = owlmesh(&["up", flag, url]);
            assert!(!output.status.success(), "{flag} {url}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(flag)
                    && stderr.contains(&format!("{url:?} is not a postgres:// URL"))
                    && stderr.contains("leave the flag out for SQLite"),
                "{flag} {url}: {stderr}"
            );
        }
    }
}

#[test]
fn a_port_in_use_is_reported_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = owlmesh(&["directory", "--listen", &address, "--insecure-no-auth"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}

#[test]
fn a_service_without_a_token_refuses_to_start_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_owlmesh"))
        .args(["directory", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("OWLMESH_TOKEN_FILE")
        .env_remove("OWLMESH_TOKEN")
        .output()
        .expect("run owlmesh");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no token: give --token-file FILE or --token TOKEN")
            && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
}

#[test]
fn a_bad_token_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, "# tokens\n0123456789abcdef0123 reader\nshort\n").unwrap();
    let path = path.display().to_string();
    let output = owlmesh(&[
        "directory",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        &path,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{path}:3: a token must be at least 16 characters")),
        "{stderr}"
    );
}
