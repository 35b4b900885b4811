#!/usr/bin/env bash
# The whole test suite, from a fresh clone: starts (or installs) PostgreSQL and
# a MongoDB-wire server, then runs formatting, lints and every test.
#
# Usage: scripts/test.sh [extra cargo test args]
# Env:   TEST_LOG=1 shows server logs in tests; VERBOSE=1 shows set-up steps.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

need_cmd cargo
"$ROOT/scripts/postgres.sh"
MONGODB_URI="$("$ROOT/scripts/mongo.sh")"
export MONGODB_URI
export TEST_PG_URL="${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"

# Databases left by earlier runs (each test makes its own).
"$ROOT/scripts/clean-test-dbs.sh" || warn "could not remove old test databases"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --all-targets --workspace --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace "$@"
# The benchmark and the comparison write modes exist only with the `bench`
# feature, which production builds never enable: lint and unit-test them too.
echo "== the benchmark (bench feature): clippy and unit tests"
cargo clippy --all-targets --workspace --features bench --quiet -- -D warnings
cargo test --features bench --bin bench
