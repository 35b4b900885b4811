# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   ROOT       absolute path of the project root (the directory holding Cargo.toml;
#              STUDYSYNC_ROOT overrides the detection)
#   LOCAL_DIR  $ROOT/.local, per-checkout state (gitignored); created on demand
#   log MSG    progress message on stderr, only when VERBOSE=1
#   warn MSG   warning on stderr, always
#   die MSG    error on stderr, always, then exit 1
#   need_cmd C die unless command C is on PATH
#   as_root CMD...  run CMD as root (directly, or through password-less sudo)
#   wait_until SECONDS CMD...   retry CMD every 0.2 s until it succeeds or time runs out
#   free_port                   prints a local TCP port nothing listens on
#   start_private_mongo NAME    a MongoDB-wire server of its own for a measurement
#   stop_private_mongo          stops it and deletes its storage

if [[ -n "${STUDYSYNC_LIB_LOADED:-}" ]]; then
  return 0
fi
STUDYSYNC_LIB_LOADED=1

_lib_script_name="$(basename "${0:-studysync}")"

log() {
  if [[ "${VERBOSE:-0}" == "1" ]]; then
    printf '%s: %s\n' "$_lib_script_name" "$*" >&2
  fi
}

warn() {
  printf '%s: warning: %s\n' "$_lib_script_name" "$*" >&2
}

die() {
  printf '%s: error: %s\n' "$_lib_script_name" "$*" >&2
  exit 1
}

# Runs a command as root (directly, or through password-less sudo).
as_root() {
  if [[ "$(id -u)" == "0" ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root to run: $*"
  fi
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "required command not found: $1"
}

# wait_until SECONDS CMD [ARGS...]: run CMD until it succeeds, at most SECONDS.
wait_until() {
  local timeout="$1"
  shift
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  "$@" >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_private_mongo NAME: starts the executable `scripts/mongo.sh bin`
# provides (mongod, or SecantusDB) on a free port with fresh storage under
# .local/NAME, so nothing else using the development server disturbs a
# measurement. Sets MONGODB_URI, PRIVATE_MONGO_PID, PRIVATE_MONGO_DIR and
# PRIVATE_MONGO_KIND (what the report says about it). Not recorded as the
# development server's URI (.local/mongo/uri).
start_private_mongo() {
  local server mem_mib cache_mib port
  server="$("$ROOT/scripts/mongo.sh" bin)"
  # mongod's default WiredTiger cache: 50 % of (RAM - 1 GiB), at least 256 MiB.
  mem_mib=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
  cache_mib=$(((mem_mib - 1024) / 2))
  ((cache_mib >= 256)) || cache_mib=256
  port="$(free_port)"
  mkdir -p "$LOCAL_DIR/$1"
  PRIVATE_MONGO_DIR="$(mktemp -d "$LOCAL_DIR/$1/run.XXXXXX")"
  PRIVATE_MONGO_KIND="private $(basename "$server"), fresh storage"
  case "$(basename "$server")" in
    mongod*) "$server" --bind_ip 127.0.0.1 --port "$port" --dbpath "$PRIVATE_MONGO_DIR" >"$PRIVATE_MONGO_DIR.log" 2>&1 & ;;
    # SecantusDB's WiredTiger cache defaults to 1 GiB; mongod takes half of
    # the memory less 1 GiB. With the smaller cache the full-scale drain
    # stalls near its end, its writer waiting in cache eviction.
    *)
      "$server" --host 127.0.0.1 --port "$port" --storage-path "$PRIVATE_MONGO_DIR" \
        --cache-size "${cache_mib}M" >"$PRIVATE_MONGO_DIR.log" 2>&1 &
      PRIVATE_MONGO_KIND="$PRIVATE_MONGO_KIND, WiredTiger cache ${cache_mib} MiB as mongod sizes it"
      ;;
  esac
  PRIVATE_MONGO_PID=$!
  MONGODB_URI="mongodb://127.0.0.1:$port"
  export MONGODB_URI
  wait_until 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" ||
    die "the private MongoDB server did not start; see $PRIVATE_MONGO_DIR.log"
}

stop_private_mongo() {
  if [[ -n "${PRIVATE_MONGO_PID:-}" ]]; then
    kill "$PRIVATE_MONGO_PID" 2>/dev/null || true
    wait "$PRIVATE_MONGO_PID" 2>/dev/null || true
    PRIVATE_MONGO_PID=""
  fi
  if [[ -n "${PRIVATE_MONGO_DIR:-}" ]]; then
    rm -rf "$PRIVATE_MONGO_DIR" "$PRIVATE_MONGO_DIR.log"
    PRIVATE_MONGO_DIR=""
  fi
}

# Project root: the nearest ancestor of scripts/ that holds Cargo.toml;
# falls back to git, then to the parent of this file's directory.
_lib_find_root() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
  local d="$dir"
  while [[ "$d" != "/" ]]; do
    if [[ -f "$d/Cargo.toml" && -d "$d/scripts" ]]; then
      printf '%s\n' "$d"
      return 0
    fi
    d="$(dirname "$d")"
  done
  if git -C "$dir" rev-parse --show-toplevel >/dev/null 2>&1; then
    git -C "$dir" rev-parse --show-toplevel
    return 0
  fi
  (cd "$dir/.." && pwd -P)
}

ROOT="${STUDYSYNC_ROOT:-$(_lib_find_root)}"
LOCAL_DIR="$ROOT/.local"
mkdir -p "$LOCAL_DIR"
export ROOT LOCAL_DIR
