#!/usr/bin/env bash
# Benchmark against Scrapy, in one command: installs what is missing (nginx and wrk from
# Debian's packages, Scrapy into bench/.venv), builds owlmesh, bare-crawl and site-generate
# in release mode, then runs bench/compare.py, which writes the site with site-generate
# (owlmesh-site's shop, the one the demo and the tests crawl), serves it with its own nginx,
# measures the nginx ceiling and alternates owlmesh, Scrapy and bare-crawl.
#
#   bench/run.sh [--pages N] [--rounds R] [other bench/compare.py options]
#
# OWLMESH_BIN, BARE_CRAWL_BIN and SITE_GENERATE_BIN use prebuilt executables instead of
# building; BENCH_WORK moves the working folder (default target/bench: the site, logs,
# items, results.json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
pages=10000
rounds=3
passthrough=()
while (($#)); do
    case "$1" in
    --pages) pages="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h | --help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exec python3 bench/compare.py --help
        ;;
    *) passthrough+=("$1"); shift ;;
    esac
done

say() { echo "[bench] $*" >&2; }

# nginx and wrk, from Debian's packages, when missing. The package's own service is left
# alone: the bench runs an nginx of its own with its own configuration.
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Scrapy, pinned, in a virtualenv of its own.
venv="$root/bench/.venv"
if ! "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qxiF "$(cat bench/requirements.txt)"; then
    say "installing Scrapy into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -r bench/requirements.txt
fi

# One package at a time: built together, their dependencies' features would unify and
# owlmesh would differ from the `cargo build --release -p owlmesh` that users run.
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ -z "${OWLMESH_BIN:-}" ]]; then
    say "building owlmesh (release)"
    cargo build --release --quiet -p owlmesh
fi
if [[ -z "${BARE_CRAWL_BIN:-}" ]]; then
    say "building bare-crawl (release)"
    cargo build --release --quiet -p owlmesh-bench
fi
if [[ -z "${SITE_GENERATE_BIN:-}" ]]; then
    say "building site-generate (release)"
    cargo build --release --quiet -p owlmesh-site --bin site-generate
fi
owlmesh="${OWLMESH_BIN:-$target/release/owlmesh}"
bare="${BARE_CRAWL_BIN:-$target/release/bare-crawl}"
generate="${SITE_GENERATE_BIN:-$target/release/site-generate}"

exec python3 bench/compare.py --work "${BENCH_WORK:-$target/bench}" \
    --pages "$pages" --rounds "$rounds" \
    --owlmesh "$owlmesh" --bare "$bare" --site-generate "$generate" \
    --scrapy "$venv/bin/scrapy" "${passthrough[@]}"
