#!/usr/bin/env bash
# Runs the server from a fresh clone: starts (or installs) PostgreSQL and a
# MongoDB-wire server, creates the `studysync` database, generates a local
# JWT secret once, applies migrations and serves GraphQL with the in-process
# sync worker on http://127.0.0.1:8080/graphql.
#
# Usage: scripts/dev.sh [serve flags]     e.g. scripts/dev.sh --bind-addr 0.0.0.0:8080
# Env:   any variable from the README's configuration table overrides the
#        defaults below; PROFILE=dev builds without optimisations (faster build).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

need_cmd cargo
"$ROOT/scripts/postgres.sh"
MONGODB_URI="${MONGODB_URI:-$("$ROOT/scripts/mongo.sh")}"
export MONGODB_URI
export MONGODB_DB="${MONGODB_DB:-studysync}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/studysync}"

if command -v psql >/dev/null 2>&1 && [[ "$DATABASE_URL" == */studysync ]]; then
  base="${DATABASE_URL%/studysync}"
  if [[ -z "$(psql "$base/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'studysync'")" ]]; then
    psql "$base/postgres" -qc "CREATE DATABASE studysync" >/dev/null
    # The local stand-in runs SERIALIZABLE like CockroachDB.
    psql "$base/postgres" -qc "ALTER DATABASE studysync SET default_transaction_isolation TO 'serializable'" >/dev/null
  fi
fi

if [[ -z "${JWT_SECRET:-}" ]]; then
  secret_file="$LOCAL_DIR/jwt_secret"
  if [[ ! -s "$secret_file" ]]; then
    (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=' >"$secret_file")
  fi
  JWT_SECRET="$(cat "$secret_file")"
  export JWT_SECRET
fi

# One local instance applies its own migrations; a deployment of several runs
# `studysync migrate up` first (README, "Migrations").
export MIGRATE_ON_START="${MIGRATE_ON_START:-true}"

profile=(--release)
[[ "${PROFILE:-release}" == "dev" ]] && profile=()
exec cargo run "${profile[@]}" --quiet --bin studysync -- serve "$@"
