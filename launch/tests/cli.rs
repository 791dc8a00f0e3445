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
fn a_port_in_use_is_reported_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = owlmesh(&["directory", "--listen", &address]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}
