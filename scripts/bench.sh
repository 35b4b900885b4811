#!/usr/bin/env bash
# Run the whole benchmark and regenerate docs/bench/REPORT.md and its charts.
#
# Usage: scripts/bench.sh [bench flags...]     (scripts/bench.sh --help lists them)
#
# 1. ensures PostgreSQL is running (scripts/postgres.sh);
# 2. MongoDB: with MONGODB_URI set, uses that server (it must answer ping);
#    otherwise starts a PRIVATE server for the run — the executable
#    `scripts/mongo.sh bin` provides (mongod, or SecantusDB), on a free port
#    with fresh storage under .local/bench-mongo — and stops it afterwards,
#    so nothing else using the development server disturbs the figures;
# 3. builds the workspace's release binaries once: the production
#    `studysync`, and the `bench` crate's driver and `bench-server` (the
#    comparison write modes), side by side in one target directory;
# 4. runs target/release/bench: fresh databases named studysync_bench, the
#    seed, every measurement in one run (about 6 minutes on two cores).
# Env: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432),
#      MONGODB_URI (optional, see 2).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

help_only=0
for arg in "$@"; do
  [[ "$arg" == "--help" || "$arg" == "-h" ]] && help_only=1
done

cargo build --release --workspace --bins
bench_bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/bench"
if ((help_only)); then
  exec "$bench_bin" --help
fi

DATABASE_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}/postgres" "$ROOT/scripts/postgres.sh"

trap stop_private_mongo EXIT

if [[ -n "${MONGODB_URI:-}" ]]; then
  MONGODB_URI="$("$ROOT/scripts/mongo.sh")"
  mongo_kind="given"
else
  start_private_mongo bench-mongo
  mongo_kind="$PRIVATE_MONGO_KIND"
fi
export MONGODB_URI
export BENCH_MONGO_KIND="$mongo_kind"

"$bench_bin" "$@"
