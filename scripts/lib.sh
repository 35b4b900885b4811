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
