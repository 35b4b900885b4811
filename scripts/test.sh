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

# The playground's script runs under Node in the tests (tests/api/graphiql.rs).
if ! command -v node >/dev/null 2>&1; then
  log "installing nodejs from apt"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null || die "apt-get update failed"
  as_root apt-get install -y -qq nodejs >/dev/null || die "apt-get install nodejs failed"
fi

# Databases left by earlier runs (each test makes its own).
"$ROOT/scripts/clean-test-dbs.sh" || warn "could not remove old test databases"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
# The workspace: the server, its migrations and the benchmark crate.
cargo clippy --all-targets --workspace --quiet -- -D warnings
echo "== operations kit (promtool)"
"$ROOT/scripts/ops-check.sh"
echo "== cargo test"
# Every statement the tests send (servers, workers, CLI runs, migrations) is
# recorded and checked against the CockroachDB rules (src/sql_audit.rs).
audit_dir="$LOCAL_DIR/sql-audit"
rm -rf "$audit_dir"
SQL_AUDIT_DIR="$audit_dir" cargo test --workspace "$@"
echo "== CockroachDB rules over every statement the tests sent"
shopt -s nullglob
recorded=("$audit_dir"/statements-*.sql)
violations=("$audit_dir"/violations-*.txt)
shopt -u nullglob
if ((${#recorded[@]} == 0)); then
  die "the SQL audit recorded no statement: is SQL_AUDIT_DIR reaching the tests?"
fi
if ((${#violations[@]} > 0)); then
  cat "${violations[@]}" >&2
  die "statements above break the CockroachDB rules (docs/cockroachdb.md)"
fi
count="$(cat "${recorded[@]}" | grep -c ';$' || true)"
echo "checked ${count} statements (distinct per process) from ${#recorded[@]} processes: none breaks a rule"
