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

mongo_pid=""
mongo_dir=""
cleanup() {
  if [[ -n "$mongo_pid" ]]; then
    kill "$mongo_pid" 2>/dev/null || true
    wait "$mongo_pid" 2>/dev/null || true
  fi
  if [[ -n "$mongo_dir" ]]; then
    rm -rf "$mongo_dir" "$mongo_dir.log"
  fi
}
trap cleanup EXIT

if [[ -n "${MONGODB_URI:-}" ]]; then
  MONGODB_URI="$("$ROOT/scripts/mongo.sh")"
  mongo_kind="given"
else
  server="$("$ROOT/scripts/mongo.sh" bin)"
  # mongod's default WiredTiger cache: 50 % of (RAM - 1 GiB), at least 256 MiB.
  mem_mib=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
  cache_mib=$(((mem_mib - 1024) / 2))
  ((cache_mib >= 256)) || cache_mib=256
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  mkdir -p "$LOCAL_DIR/bench-mongo"
  mongo_dir="$(mktemp -d "$LOCAL_DIR/bench-mongo/run.XXXXXX")"
  mongo_kind="private $(basename "$server"), fresh storage"
  case "$(basename "$server")" in
    mongod*) "$server" --bind_ip 127.0.0.1 --port "$port" --dbpath "$mongo_dir" >"$mongo_dir.log" 2>&1 & ;;
    # SecantusDB's WiredTiger cache defaults to 1 GiB; mongod takes half of
    # the memory less 1 GiB. With the smaller cache the full-scale drain
    # stalls near its end, its writer waiting in cache eviction.
    *)
      "$server" --host 127.0.0.1 --port "$port" --storage-path "$mongo_dir" \
        --cache-size "${cache_mib}M" >"$mongo_dir.log" 2>&1 &
      mongo_kind="$mongo_kind, WiredTiger cache ${cache_mib} MiB as mongod sizes it"
      ;;
  esac
  mongo_pid=$!
  MONGODB_URI="mongodb://127.0.0.1:$port"
  # Not through scripts/mongo.sh: it would record this URI as the
  # development server's (.local/mongo/uri).
  wait_until 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" ||
    die "the private MongoDB server did not start; see $mongo_dir.log"
fi
export MONGODB_URI
export BENCH_MONGO_KIND="$mongo_kind"

"$bench_bin" "$@"
