#!/usr/bin/env bash
# Feeds generated hostile documents (deep nesting of every kind, fragment
# bombs, directive and variable floods, broken strings, stray bytes) through
# the whole request pipeline of a real server for a given time, by POST, GET
# and websocket, and fails if any goes unanswered (a panic, an abort, a 5xx).
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
# The normal suite runs the same test briefly, from a fixed seed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

need_cmd cargo
"$ROOT/scripts/postgres.sh"
MONGODB_URI="${MONGODB_URI:-$("$ROOT/scripts/mongo.sh")}"
export MONGODB_URI
export TEST_PG_URL="${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
export FUZZ_SECONDS="$seconds"

echo "== fuzzing the request pipeline for ${seconds}s"
cargo test --test api -- --exact \
  security::fuzz::generated_hostile_documents_all_get_an_answer_by_post_get_and_websocket \
  --nocapture
