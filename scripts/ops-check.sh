#!/usr/bin/env bash
# Checks the operations kit (docs/ops/): the Prometheus alerting rules parse
# (`promtool check rules`) and fire on the series they should, and only
# those (`promtool test rules docs/ops/alerts.test.yml`). The dashboard's
# queries are checked against the metrics the server exports by the test
# suite (tests/api/ops_kit.rs).
#
# promtool comes from PATH, else from Debian's `prometheus` package, unpacked
# into .local/prometheus (downloaded, not installed: no service is started).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

promtool_bin() {
  if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    return
  fi
  local dir="$LOCAL_DIR/prometheus"
  if [[ ! -x "$dir/usr/bin/promtool" ]]; then
    log "unpacking promtool from Debian's prometheus package into $dir"
    need_cmd apt-get
    need_cmd dpkg-deb
    local download
    download="$(mktemp -d)"
    if ! (cd "$download" && apt-get download prometheus >/dev/null 2>&1); then
      as_root apt-get update -qq >/dev/null || die "apt-get update failed"
      (cd "$download" && apt-get download prometheus >/dev/null) ||
        die "apt-get download prometheus failed"
    fi
    mkdir -p "$dir"
    dpkg-deb -x "$download"/prometheus_*.deb "$dir"
    rm -rf "$download"
  fi
  printf '%s\n' "$dir/usr/bin/promtool"
}

promtool="$(promtool_bin)"
"$promtool" check rules docs/ops/alerts.yml
(cd docs/ops && "$promtool" test rules alerts.test.yml)
