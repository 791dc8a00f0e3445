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

# What CI runs, in the order it runs it: the cheap checks first. `.ci/run` runs `fuzz` after it.
ci: fmt-check lint doc deny test

# The targets run under cargo-fuzz and libFuzzer. A crash leaves its input in
# fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET from the committed seeds in
# fuzz/seeds/TARGET. No sanitizer (`-s none`): the code forbids `unsafe`, a panic is what a
# target finds, and the stable toolchain builds it as is. An input slower than
# FUZZ_INPUT_TIMEOUT seconds (10) fails too, a hang being a finding. fuzz/ is a workspace of
# its own that starts from the main lock file, so that it builds the versions the tests run.
# Every fuzz target of fuzz/ for `seconds` each, failing on the first crash or hang.
fuzz seconds="30":
    cp Cargo.lock fuzz/Cargo.lock
    cd fuzz && cargo fuzz build -s none
    cd fuzz && for target in $(cargo fuzz list); do \
        echo "== fuzz $target for {{ seconds }} s"; \
        mkdir -p "corpus/$target"; \
        cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- \
            -max_total_time={{ seconds }} -timeout=${FUZZ_INPUT_TIMEOUT:-10} -print_final_stats=1; \
    done

# The deployment files of deploy/: every Kubernetes manifest validated offline against the
# schemas kubernetes-validate ships (strict: an unknown field fails), every OWLMESH_ variable
# in deploy/ and docs/deploy.md checked against `owlmesh KIND --help` (a misspelt one would be
# ignored by the service), and the systemd units checked by systemd-analyze where it exists
# (which only warns of an unknown key or a bad value: any word of it fails the check).
deploy-check:
    cargo build -p owlmesh
    kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml
    deploy/check-env-vars.py "${CARGO_TARGET_DIR:-target}/debug/owlmesh"
    if command -v systemd-analyze >/dev/null 2>&1; then \
        units=$(mktemp -d); trap 'rm -rf "$units"' EXIT; \
        binary=$(realpath "${CARGO_TARGET_DIR:-target}/debug/owlmesh"); \
        for unit in deploy/systemd/*.service; do \
            sed "s#/usr/local/bin/owlmesh#$binary#" "$unit" > "$units/$(basename "$unit")"; \
        done; \
        cp "$units/owlmesh-scraper@.service" "$units/owlmesh-scraper@1.service"; \
        problems=$(cd "$units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
            owlmesh-directory.service owlmesh-dispatcher.service owlmesh-scraper@1.service \
            owlmesh-archiver.service owlmesh-monitoring.service 2>&1); \
        if [ -n "$problems" ]; then echo "$problems"; exit 1; fi; \
        echo "systemd units verified"; \
    else \
        echo "warning: systemd-analyze not found: the systemd units were not verified"; \
    fi
