#!/usr/bin/env bash
# Ensure a MongoDB-wire server (the read model) and print its URI.
#
# Usage:
#   scripts/mongo.sh [start]  ensure a server answers `ping`; print its URI (one
#                             line on stdout, e.g. mongodb://127.0.0.1:40123) and
#                             write it to .local/mongo/uri
#   scripts/mongo.sh stop     stop the server this script started (no-op if none)
#   scripts/mongo.sh bin      print the absolute path of a server executable, for
#                             tests that run a private instance (installs it first
#                             if needed). Argument forms by basename:
#                               secantusd-py --host 127.0.0.1 --port P --storage-path DIR
#                               mongod --bind_ip 127.0.0.1 --port P --dbpath DIR
#                             (DIR must exist; one server per DIR at a time)
#
# Which server, in order:
#   1. MONGODB_URI set  -> it must answer ping; it is printed as is.
#   2. mongod on PATH   -> a forked mongod, dbpath .local/mongo/mongod-data.
#   3. otherwise        -> SecantusDB==0.7.0b3 in the virtualenv .local/venv,
#                          `secantusd-py --storage-path .local/mongo/data`,
#                          log .local/mongo/server.log, pid .local/mongo/pid.
# A server this script started earlier and that still answers is reused.
# Env: MONGO_WAIT_SECS (default 30), VERBOSE=1 for progress on stderr,
#      PYTHON to pick the interpreter (>= 3.10) for the virtualenv.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECANTUS_VERSION="0.7.0b3"
PYMONGO_SPEC="pymongo>=4.6,<5"
MONGO_WAIT_SECS="${MONGO_WAIT_SECS:-30}"
MONGO_DIR="$LOCAL_DIR/mongo"
PID_FILE="$MONGO_DIR/pid"
URI_FILE="$MONGO_DIR/uri"               # the URI to use (printed)
SERVER_URI_FILE="$MONGO_DIR/server-uri" # the URI of the server we started
LOG_FILE="$MONGO_DIR/server.log"
VENV="$LOCAL_DIR/venv"
VPY="$VENV/bin/python"
SECANTUS_BIN="$VENV/bin/secantusd-py"

mkdir -p "$MONGO_DIR"

# ---------------------------------------------------------------- python/venv

py_ok() {
  "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

find_python() {
  local c
  for c in "${PYTHON:-}" python3.13 python3.12 python3.11 python3.10 python3; do
    [[ -n "$c" ]] || continue
    if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then
      command -v "$c"
      return 0
    fi
  done
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 /usr/local/bin/python3 /usr/bin/python3; do
    if [[ -x "$c" ]] && py_ok "$c"; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  return 1
}

venv_ok() {
  [[ -x "$VPY" ]] && "$VPY" -c 'import sys' >/dev/null 2>&1
}

# pkg_version NAME: installed version in the venv, or empty.
pkg_version() {
  "$VPY" - "$1" 2>/dev/null <<'EOF' || true
import sys, importlib.metadata as m
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass
EOF
}

pip_install() {
  local pip_log="$LOCAL_DIR/pip-install.log"
  log "pip install $*"
  if ! "$VPY" -m pip install --disable-pip-version-check -q "$@" >"$pip_log" 2>&1; then
    tail -n 20 "$pip_log" >&2
    die "pip install $* failed (full log: $pip_log)"
  fi
}

ensure_venv() {
  if venv_ok; then
    return 0
  fi
  local py
  py="$(find_python)" || die "no python >= 3.10 with the venv module found (set PYTHON=/path/to/python3)"
  log "creating virtualenv $VENV with $py"
  rm -rf "$VENV"
  "$py" -m venv "$VENV" >/dev/null 2>&1 || die "could not create virtualenv $VENV with $py (on Debian: apt-get install python3-venv)"
}

# ensure_pymongo: venv with pymongo, for health checks.
ensure_pymongo() {
  ensure_venv
  if [[ -z "$(pkg_version pymongo)" ]]; then
    pip_install "$PYMONGO_SPEC"
  fi
}

# ensure_secantus: venv with SecantusDB at the pinned version and pymongo.
ensure_secantus() {
  ensure_venv
  if [[ "$(pkg_version SecantusDB)" != "$SECANTUS_VERSION" || -z "$(pkg_version pymongo)" ]]; then
    pip_install "SecantusDB==$SECANTUS_VERSION" "$PYMONGO_SPEC"
  fi
  [[ -x "$SECANTUS_BIN" ]] || die "SecantusDB installed but $SECANTUS_BIN is missing"
}

# ping_wait URI SECONDS [PID]: wait until URI answers ping; give up early if PID dies.
ping_wait() {
  "$VPY" - "$@" <<'EOF'
import os, sys, time
from pymongo import MongoClient
uri, secs = sys.argv[1], float(sys.argv[2])
pid = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
deadline = time.monotonic() + secs
last = "timeout"
while True:
    try:
        c = MongoClient(uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
        try:
            c.admin.command("ping")
            sys.exit(0)
        finally:
            c.close()
    except Exception as e:  # noqa: BLE001 - any failure means "not yet"
        last = str(e).splitlines()[0][:200]
    if pid is not None:
        try:
            os.kill(pid, 0)
        except OSError:
            print(f"server process {pid} exited", file=sys.stderr)
            sys.exit(2)
    if time.monotonic() >= deadline:
        print(last, file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
EOF
}

free_port() {
  "$VPY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ---------------------------------------------------------------- our server

# our_pid: pid from the pid file if that process is alive and is our server.
our_pid() {
  local pid cmd
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *"$MONGO_DIR"* ]] || return 1
  printf '%s\n' "$pid"
}

stop_server() {
  local pid i
  if pid="$(our_pid)"; then
    log "stopping server pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      warn "server pid $pid ignored SIGTERM for 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  if [[ -f "$SERVER_URI_FILE" && -f "$URI_FILE" ]] && cmp -s "$SERVER_URI_FILE" "$URI_FILE"; then
    rm -f "$URI_FILE"
  fi
  rm -f "$PID_FILE" "$SERVER_URI_FILE"
}

# data_dir KIND: storage directory for that kind of server (files differ).
data_dir() {
  if [[ "$1" == "mongod" ]]; then
    printf '%s\n' "$MONGO_DIR/mongod-data"
  else
    printf '%s\n' "$MONGO_DIR/data"
  fi
}

# reuse_running KIND: print the recorded URI if our server of KIND is still up and answers.
reuse_running() {
  local kind="$1" pid uri cmd
  pid="$(our_pid)" || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd " == *" $(data_dir "$kind") "* ]] || return 1
  [[ -f "$SERVER_URI_FILE" ]] || return 1
  uri="$(head -n 1 "$SERVER_URI_FILE")"
  [[ -n "$uri" ]] || return 1
  if ping_wait "$uri" "$MONGO_WAIT_SECS" "$pid" 2>/dev/null; then
    log "reusing server pid $pid at $uri"
    printf '%s\n' "$uri" >"$URI_FILE"
    printf '%s\n' "$uri"
    return 0
  fi
  warn "recorded server pid $pid does not answer at $uri; restarting it"
  return 1
}

launch_secantus() {
  local port="$1" data
  data="$(data_dir secantus)"
  mkdir -p "$data"
  printf '\n=== %s secantusd-py port %s\n' "$(date -u +%FT%TZ)" "$port" >>"$LOG_FILE"
  # setsid: own session, so the server outlives the caller's process group;
  # 9>&-: the server must not inherit (and so hold) our lock.
  nohup setsid "$SECANTUS_BIN" --host 127.0.0.1 --port "$port" --storage-path "$data" \
    >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
  printf '%s\n' "$!" >"$PID_FILE"
}

launch_mongod() {
  local port="$1" data out
  data="$(data_dir mongod)"
  mkdir -p "$data"
  rm -f "$PID_FILE"
  out="$(mongod --fork --bind_ip 127.0.0.1 --port "$port" --dbpath "$data" \
    --logpath "$LOG_FILE" --logappend --pidfilepath "$PID_FILE" 2>&1 9>&-)" || {
    printf '%s\n' "$out" >&2
    return 1
  }
}

start_local() {
  local kind="$1" attempt port pid uri
  stop_server
  for attempt in 1 2 3; do
    port="$(free_port)"
    uri="mongodb://127.0.0.1:$port"
    log "starting $kind on port $port (attempt $attempt)"
    if [[ "$kind" == "mongod" ]]; then
      launch_mongod "$port" || continue
    else
      launch_secantus "$port"
    fi
    pid="$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)"
    if ping_wait "$uri" "$MONGO_WAIT_SECS" "$pid"; then
      printf '%s\n' "$uri" >"$SERVER_URI_FILE"
      printf '%s\n' "$uri" >"$URI_FILE"
      log "$kind pid $pid answers at $uri"
      printf '%s\n' "$uri"
      return 0
    fi
    warn "$kind did not answer on port $port; last log lines:"
    tail -n 15 "$LOG_FILE" >&2 || true
    stop_server
  done
  die "could not start $kind (log: $LOG_FILE)"
}

# ---------------------------------------------------------------- commands

cmd_start() {
  if [[ -n "${MONGODB_URI:-}" ]]; then
    ensure_pymongo
    ping_wait "$MONGODB_URI" "$MONGO_WAIT_SECS" ||
      die "MONGODB_URI is set but does not answer ping within ${MONGO_WAIT_SECS}s"
    printf '%s\n' "$MONGODB_URI" >"$URI_FILE"
    printf '%s\n' "$MONGODB_URI"
    return 0
  fi
  if command -v mongod >/dev/null 2>&1; then
    ensure_pymongo
    reuse_running mongod || start_local mongod
  else
    ensure_secantus
    reuse_running secantus || start_local secantus
  fi
}

cmd_bin() {
  if command -v mongod >/dev/null 2>&1; then
    command -v mongod
  else
    ensure_secantus
    printf '%s\n' "$SECANTUS_BIN"
  fi
}

main() {
  local cmd="${1:-start}"
  # One invocation at a time per checkout (parallel test runners may race).
  exec 9>"$MONGO_DIR/lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 120 9 || die "timed out waiting for $MONGO_DIR/lock"
  fi
  case "$cmd" in
    start) cmd_start ;;
    stop) stop_server ;;
    bin) cmd_bin ;;
    -h | --help | help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (use: start | stop | bin)" ;;
  esac
}

main "$@"
