#!/usr/bin/env bash
# Ensure a PostgreSQL server (the local stand-in for CockroachDB) answers.
#
# Usage: scripts/postgres.sh
#
# Target: host/port of DATABASE_URL when set, else 127.0.0.1:5432.
#   1. pg_isready succeeds            -> done.
#   2. PostgreSQL installed, stopped  -> start the newest cluster with pg_ctlcluster.
#   3. not installed                  -> apt-get install postgresql, allow trust auth
#                                        for 127.0.0.1/32 and ::1/128, start it.
# Then waits (PG_WAIT_SECS, default 60) until it accepts connections.
# Quiet on success unless VERBOSE=1; errors go to stderr with exit status 1.
# Starting or installing needs root (or sudo) and a local target.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_WAIT_SECS="${PG_WAIT_SECS:-60}"
PG_HOST=127.0.0.1
PG_PORT=5432

# postgres://user:pass@host:port/db?x=y  (also postgresql://; host may be [v6])
parse_database_url() {
  local url="$1" rest hostport
  rest="${url#*://}"
  rest="${rest%%/*}"
  rest="${rest%%\?*}"
  hostport="${rest##*@}"
  if [[ "$hostport" =~ ^\[([^]]+)\](:([0-9]+))?$ ]]; then
    PG_HOST="${BASH_REMATCH[1]}"
    PG_PORT="${BASH_REMATCH[3]:-5432}"
  elif [[ "$hostport" =~ ^([^:]*)(:([0-9]+))?$ ]]; then
    PG_HOST="${BASH_REMATCH[1]:-127.0.0.1}"
    PG_PORT="${BASH_REMATCH[3]:-5432}"
  else
    die "cannot parse host/port from DATABASE_URL"
  fi
}

if [[ -n "${DATABASE_URL:-}" ]]; then
  parse_database_url "$DATABASE_URL"
fi

is_ready() {
  command -v pg_isready >/dev/null 2>&1 || return 1
  pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
}

is_local_target() {
  case "$PG_HOST" in
    127.* | localhost | ::1 | /*) return 0 ;;
    *) return 1 ;;
  esac
}

# Newest installed major version with a config dir, e.g. "15".
pg_version() {
  local d best=""
  for d in /etc/postgresql/*/; do
    [[ -d "$d" ]] || continue
    d="${d%/}"
    d="${d##*/}"
    [[ "$d" =~ ^[0-9]+$ ]] || continue
    if [[ -z "$best" ]] || ((d > best)); then
      best="$d"
    fi
  done
  printf '%s' "$best"
}

pg_installed() {
  [[ -n "$(pg_version)" ]] && command -v pg_ctlcluster >/dev/null 2>&1
}

install_postgres() {
  log "installing postgresql from apt"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null ||
    die "apt-get update failed"
  as_root apt-get install -y -qq postgresql >/dev/null ||
    die "apt-get install postgresql failed"
  pg_installed || die "postgresql installed but no cluster config under /etc/postgresql"
}

# Idempotent: listen on localhost, on PG_PORT, trust auth for local TCP.
configure_cluster() {
  local v="$1" conf hba
  conf="/etc/postgresql/$v/main/postgresql.conf"
  hba="/etc/postgresql/$v/main/pg_hba.conf"
  [[ -f "$conf" && -f "$hba" ]] || die "missing $conf or $hba"
  log "configuring cluster $v/main (port $PG_PORT, trust for 127.0.0.1 and ::1)"
  as_root sed -i -E "s/^#?[[:space:]]*port[[:space:]]*=.*/port = $PG_PORT/" "$conf"
  as_root sed -i -E "s/^#?[[:space:]]*listen_addresses[[:space:]]*=.*/listen_addresses = 'localhost'/" "$conf"
  # Rewrite the method of existing loopback lines, append any that are missing.
  as_root sed -i -E \
    -e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+)[^[:space:]]+#\1trust#' \
    -e 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+::1/128[[:space:]]+)[^[:space:]]+#\1trust#' \
    "$hba"
  if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    printf 'host all all 127.0.0.1/32 trust\n' | as_root tee -a "$hba" >/dev/null
  fi
  if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+::1/128[[:space:]]+trust' "$hba"; then
    printf 'host all all ::1/128 trust\n' | as_root tee -a "$hba" >/dev/null
  fi
}

cluster_online() {
  local v="$1"
  pg_lsclusters -h 2>/dev/null | awk -v v="$v" '$1 == v && $2 == "main" { print $4 }' | grep -q '^online'
}

start_cluster() {
  local v="$1" fresh="$2" out port
  if [[ ! -d "/etc/postgresql/$v/main" ]]; then
    log "creating cluster $v/main"
    as_root pg_createcluster "$v" main >/dev/null || die "pg_createcluster $v main failed"
  fi
  if cluster_online "$v"; then
    if [[ "$fresh" != "1" ]]; then
      port="$(pg_lsclusters -h 2>/dev/null | awk -v v="$v" '$1 == v && $2 == "main" { print $3 }')"
      die "cluster $v/main is running (port ${port:-?}) but $PG_HOST:$PG_PORT does not answer; check DATABASE_URL or /etc/postgresql/$v/main/postgresql.conf"
    fi
    # Started by the package's postinst: restart to apply our configuration.
    log "cluster $v/main is running; restarting to apply configuration"
    out="$(as_root pg_ctlcluster --skip-systemctl-redirect "$v" main restart 2>&1)" ||
      die "pg_ctlcluster $v main restart failed: $out"
  else
    log "starting cluster $v/main"
    out="$(as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>&1)" ||
      die "pg_ctlcluster $v main start failed: $out (see /var/log/postgresql/postgresql-$v-main.log)"
  fi
}

main() {
  if is_ready; then
    log "postgres answers on $PG_HOST:$PG_PORT"
    return 0
  fi
  is_local_target ||
    die "PostgreSQL at $PG_HOST:$PG_PORT does not answer and is not local, so it cannot be started here"

  local v fresh=0
  if ! pg_installed; then
    install_postgres
    fresh=1
  fi
  v="$(pg_version)"
  if [[ "$fresh" == "1" ]]; then
    configure_cluster "$v"
  fi
  start_cluster "$v" "$fresh"

  if ! wait_until "$PG_WAIT_SECS" is_ready; then
    die "PostgreSQL did not become ready on $PG_HOST:$PG_PORT within ${PG_WAIT_SECS}s (cluster $v/main; see /var/log/postgresql/postgresql-$v-main.log)"
  fi
  log "postgres answers on $PG_HOST:$PG_PORT"
}

main "$@"
