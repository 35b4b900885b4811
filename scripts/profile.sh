#!/usr/bin/env bash
# Instruction-count profile of a fixed request mix; writes docs/bench/PROFILE.md.
#
# Usage: scripts/profile.sh [requests per kind]     (default 200)
#
# 1. installs valgrind if missing; builds the release `studysync` (the same
#    binary scripts/bench.sh builds, so one build serves both);
# 2. PostgreSQL (scripts/postgres.sh), a fresh database `studysync_profile`,
#    and a private MongoDB-wire server with fresh storage;
# 3. migrates, seeds (200 accounts, 2,000 sessions, 2,000 todos) and starts
#    a `studysync worker` process (not profiled) to carry the seed and the
#    mix's writes to MongoDB;
# 4. runs `studysync serve` with no worker of its own under
#    `valgrind --tool=callgrind` and drives scripts/profile_mix.py's mix:
#    `__typename`, a todos page with owners, `leaderboard(WEEK, first: 10)`,
#    `createTodo`, one callgrind dump per kind;
# 5. writes the report (instructions per request, by crate, top functions).
# Env: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432),
#      PROFILE_OUT (keep the dumps there; default a temporary directory).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

requests="${1:-200}"
need_cmd cargo
need_cmd python3
need_cmd curl
if ! command -v valgrind >/dev/null 2>&1; then
  as_root apt-get install -y -qq valgrind >/dev/null || die "apt-get install valgrind failed"
fi

# The same build as scripts/bench.sh (the whole workspace: building one
# package alone would unify features differently and rebuild its dependencies).
cargo build --release --workspace --bins
bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/studysync"

base="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
DATABASE_URL="$base/postgres" "$ROOT/scripts/postgres.sh"
psql "$base/postgres" -qc "DROP DATABASE IF EXISTS studysync_profile WITH (FORCE)" >/dev/null
psql "$base/postgres" -qc "CREATE DATABASE studysync_profile" >/dev/null

out="${PROFILE_OUT:-$(mktemp -d)}"
mkdir -p "$out"
rm -f "$out"/callgrind.out*
serve_pid=""
worker_pid=""
cleanup() {
  for pid in $serve_pid $worker_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stop_private_mongo
  [[ -n "${PROFILE_OUT:-}" ]] || rm -rf "$out"
}
trap cleanup EXIT
start_private_mongo profile-mongo

port="$(free_port)"
export DATABASE_URL="$base/studysync_profile"
export MONGODB_DB=studysync_profile
JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n=')"
export JWT_SECRET
export BIND_ADDR="127.0.0.1:$port"
# The mix sends a few hundred mutations from one account.
export MUTATION_BURST=1000000 MUTATION_RATE_PER_SECOND=1000000
export RUST_LOG=warn

"$bin" migrate up >/dev/null
"$bin" seed --users 200 --sessions 2000 --todos 2000 --rooms 2 --messages 100 >/dev/null
SYNC_POLL_INTERVAL_MS=200 "$bin" worker >"$out/worker.log" 2>&1 &
worker_pid=$!

NO_WORKER=true valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$bin" serve >"$out/serve.log" 2>&1 &
serve_pid=$!
wait_until 300 curl -fsS "http://127.0.0.1:$port/healthz" ||
  die "the server did not start under valgrind; see $out/serve.log"

python3 "$ROOT/scripts/profile_mix.py" run "http://127.0.0.1:$port/graphql" "$serve_pid" "$out" "$requests"
python3 "$ROOT/scripts/profile_mix.py" report "$out" "$ROOT/docs/bench/PROFILE.md"
echo "wrote docs/bench/PROFILE.md (dumps in $out)"
