#!/usr/bin/env bash
# Builds the shared base images of the reference stack from images/<dir>/, all FROM
# local/debian:bookworm (made by `make setup`; nothing is ever pulled):
#   aiwfe/python-base:bookworm   python3, psycopg2, SQLAlchemy, Alembic, curl
#   aiwfe/postgres:15            PostgreSQL 15 + entrypoint (password from a compose secret)
#   aiwfe/caddy:2.6              Caddy 2.6.2
# Cached: each image carries the label org.aiwfe.context-sha256, a hash of its build context
# and of the base image id; an image whose label matches is "up to date" and is not rebuilt.
# Usage: build-images.sh [--force]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE_IMAGE=local/debian:bookworm
LABEL=org.aiwfe.context-sha256
# build context directory (under images/) -> image tag; python-base first.
IMAGES=(
  "python-base aiwfe/python-base:bookworm"
  "postgres aiwfe/postgres:15"
  "caddy aiwfe/caddy:2.6"
)

say() { printf 'build-images: %s\n' "$*"; }
die() { printf 'build-images: ERROR: %s\n' "$*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
  "") ;;
  --force) FORCE=1 ;;
  *) die "usage: $0 [--force]" ;;
esac

command -v docker >/dev/null 2>&1 || die "docker is not installed: run make setup first"
docker info >/dev/null 2>&1 || die "the Docker engine is not running: run make setup first"
BASE_ID=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null) \
  || die "base image $BASE_IMAGE is missing: run make setup first"

# Hash of a build context: every file's mode, path and content, plus the base image id.
context_sha() {
  local dir=$1
  {
    echo "base $BASE_ID"
    (cd "$dir" && find . -type f -printf '%m %P\n' | LC_ALL=C sort)
    (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-64
}

# The CLI may default to BuildKit, which needs buildx (not installed here): use the classic builder.
export DOCKER_BUILDKIT=0

for entry in "${IMAGES[@]}"; do
  read -r dir tag <<<"$entry"
  ctx="$HERE/images/$dir"
  [ -f "$ctx/Dockerfile" ] || die "missing $ctx/Dockerfile"
  sha=$(context_sha "$ctx")
  old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  have=""
  [ -z "$old_id" ] || have=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$tag" 2>/dev/null || true)
  if [ "$FORCE" = 0 ] && [ "$have" = "$sha" ]; then
    say "$tag up to date"
    continue
  fi
  say "building $tag (context images/$dir, sha256 ${sha:0:12})"
  log=$(mktemp)
  start=$SECONDS
  if ! docker build --network host --label "$LABEL=$sha" -t "$tag" "$ctx" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "building $tag failed (last lines above)"
  fi
  rm -f "$log"
  say "built $tag in $((SECONDS - start)) s"
  # Drop the image this build replaced, unless something still uses it.
  new_id=$(docker image inspect -f '{{.Id}}' "$tag")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
done
