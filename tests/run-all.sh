#!/usr/bin/env bash
# hydrant's whole test suite, as README.md gives it. Brings up everything the tests need (a
# Python venv with boto3 and the aws cli, an S3-compatible server binary, cargo-fuzz), runs
# formatting and lint checks, every Rust test in the workspace (unit, property, corruption,
# kill -9 and whole-system tests against real servers), and each fuzz target for 30 s.
#
# Environment knobs: HYDRANT_PROPTEST_CASES (default 10000), HYDRANT_KILL_CYCLES (default 20),
# HYDRANT_FUZZ_SECONDS (default 30), HYDRANT_POWERCUT_CYCLES (default 20), HYDRANT_S3_KILL_CYCLES
# (default 12).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS="$ROOT/target/tools"
FUZZ_SECONDS="${HYDRANT_FUZZ_SECONDS:-30}"
# One build from a clean clone: incremental compilation's caches would only take disk (several GB).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

step "Python venv for boto3 and the aws cli"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  python3 -m venv "$ROOT/.venv"
fi
# duckdb: an outside reader of the partitioned objects (engine/tests/partitioning.rs); pyarrow
# for the Parquet files of format conversion.
"$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check boto3 awscli pytest duckdb pyarrow "moto[server]" selenium
export HYDRANT_PYTHON="$ROOT/.venv/bin/python"

step "S3-compatible server (s3s-fs 0.14.1; newer needs rustc 1.96)"
if [ ! -x "$TOOLS/bin/s3s-fs" ]; then
  cargo install --locked s3s-fs@0.14.1 --features binary --root "$TOOLS"
fi
export HYDRANT_S3S_FS="$TOOLS/bin/s3s-fs"

step "PostgreSQL binaries (the tests start their own throwaway clusters)"
if [ -z "${HYDRANT_PG_BIN:-}" ]; then
  HYDRANT_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ ! -x "${HYDRANT_PG_BIN:-/nonexistent}/initdb" ]; then
  echo "no PostgreSQL server binaries found: install postgresql (Debian: apt-get install postgresql) or set HYDRANT_PG_BIN" >&2
  exit 1
fi
export HYDRANT_PG_BIN
echo "using $HYDRANT_PG_BIN"

step "kinesalite 3.3.3 (a Kinesis Data Streams server in Node.js; the Kinesis source's tests)"
KINESALITE_DIR="$TOOLS/kinesalite-3.3.3"
if [ ! -f "$KINESALITE_DIR/node_modules/kinesalite/package.json" ]; then
  mkdir -p "$KINESALITE_DIR"
  (cd "$KINESALITE_DIR" && npm install --silent --no-audit --no-fund kinesalite@3.3.3)
fi
export HYDRANT_KINESALITE_DIR="$KINESALITE_DIR"

step "tansu 0.6.0 (a Kafka-protocol broker; the Kafka (MSK) source's tests)"
# About 13 minutes to build on 2 cores: installed once into a cache outside the clone, keyed by
# its version, so later runs on the same machine reuse it.
TANSU_ROOT="${HYDRANT_TOOLS_CACHE:-$HOME/.cache/hydrant-tools}/tansu-0.6.0"
if [ ! -x "$TANSU_ROOT/bin/tansu" ]; then
  cargo install --locked --features dynostore tansu@0.6.0 --root "$TANSU_ROOT"
fi
export HYDRANT_TANSU="$TANSU_ROOT/bin/tansu"

step "cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

step "power cuts of the whole daemon in a QEMU guest (tests/powercut/run.sh)"
tests/powercut/run.sh
# The same harness against durability none (acknowledges before fdatasync) must lose records:
# proof that it would catch a daemon that acknowledges too early.
tests/powercut/run.sh --durability none --cycles 3 --expect-loss

step "fuzz targets, ${FUZZ_SECONDS} s each"
# The listing runs on its own line: inside `for ... in $(...)` a failure would go unseen by
# `set -e` and the loop would run zero times. No target listed, or none run, is a failure too.
fuzz_targets=$(cd fuzz && cargo fuzz list)
if [ -z "$fuzz_targets" ]; then
  echo "cargo fuzz list named no fuzz target" >&2
  exit 1
fi
fuzz_ran=0
for target in $fuzz_targets; do
  # The learned corpus (fuzz/corpus/<target>, not in git), then the hand-made seeds if any.
  dirs=("corpus/$target")
  if [ -d "fuzz/seeds/$target" ]; then dirs+=("seeds/$target"); fi
  mkdir -p "fuzz/corpus/$target"
  (cd fuzz && CARGO_TARGET_DIR="$ROOT/target/fuzz" \
    cargo fuzz run -s none "$target" "${dirs[@]}" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096)
  fuzz_ran=$((fuzz_ran + 1))
done
if [ "$fuzz_ran" -eq 0 ]; then
  echo "no fuzz target ran" >&2
  exit 1
fi
echo "$fuzz_ran fuzz targets ran"

step "all tests passed"
