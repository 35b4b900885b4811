#!/usr/bin/env bash
# Drops the PostgreSQL and MongoDB databases that test runs create
# (studysync_test_* and t_*). Safe to run any time no test is running.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG="${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
if command -v psql >/dev/null 2>&1; then
  psql "$PG/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'studysync_test_%'" |
    while read -r db; do
      psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done
fi

uri="${MONGODB_URI:-$(cat "$LOCAL_DIR/mongo/uri" 2>/dev/null || true)}"
if [[ -n "$uri" && -x "$LOCAL_DIR/venv/bin/python" ]]; then
  "$LOCAL_DIR/venv/bin/python" - "$uri" <<'PY'
import sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1], serverSelectionTimeoutMS=3000)
for name in client.list_database_names():
    if name.startswith("t_"):
        client.drop_database(name)
PY
fi
