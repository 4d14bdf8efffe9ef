# Shared helpers for the shell scripts of aiwfe.rollback (sourced, not run).
# shellcheck shell=bash
log() { printf '[aiwfe] %s\n' "$*" >&2; }
die() { printf '[aiwfe] ERROR: %s\n' "$*" >&2; exit 1; }
