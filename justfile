# The project's checks, one recipe each; `just ci` runs what CI runs (.ci/run calls it after
# preparing the machine).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Format every crate in place.
fmt:
    cargo fmt --all

# Fail when any file is not formatted.
fmt-check:
    cargo fmt --all -- --check

# Clippy over every crate and target (tests, benches, examples), warnings as errors.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# The libraries' API docs, with broken or private intra-doc links as errors.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --lib

# Licenses, banned and duplicate crates, crates' sources (deny.toml); not advisories, which need the network.
deny:
    cargo deny check licenses bans sources

# Everything the README's test command runs.
test *args:
    cargo test --workspace {{ args }}

# The benchmarks of the README's table; the crawl bench drives the release binary.
bench *args="--workspace --benches":
    cargo build --release -p owlmesh
    cargo bench {{ args }}

# What CI runs, in the order it runs it: the cheap checks first.
ci: fmt-check lint doc deny test
