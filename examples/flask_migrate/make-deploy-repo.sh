#!/usr/bin/env bash
# Makes DEST a git repository (the deploy directory of the notes example) whose annotated tags are
# the releases of releases.yml: v1 is stack/, every other release is its parent's tree plus
# releases/<tag>/, with NOTES_RELEASE=<tag> in .env. Commits are deterministic (fixed author,
# committer and dates). On creation HEAD is left detached at the first release.
# (The reference stack's script, examples/reference_stack/make-deploy-repo.sh, with this example's
# release variable and marker.)
# Idempotent: a DEST made earlier from the same sources is left as it is (HEAD included).
# Usage: make-deploy-repo.sh DEST
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STACK="$HERE/stack"
RELEASES="$HERE/releases"
LIST="$HERE/releases.yml"
# 2024-01-01T12:00:00Z; release number i is committed i days later.
BASE_DATE=1704110400
# .env variable holding the release, and the git config key that marks a repository made here.
RELEASE_VAR=NOTES_RELEASE
MARKER=aiwfe.notesexample

say() { printf 'make-deploy-repo: %s\n' "$*"; }
die() { printf 'make-deploy-repo: ERROR: %s\n' "$*" >&2; exit 1; }

if [ $# -ne 1 ] || [ -z "$1" ]; then die "usage: $0 DEST"; fi
command -v git >/dev/null 2>&1 || die "git is not installed"
DEST=$1

# releases.yml -> lines "tag|parent|description" (parent empty for the first release).
parse_releases() {
  awk '
    function val(s) { sub(/^[^:]*:[ \t]*/, "", s); sub(/[ \t]+$/, "", s); gsub(/^"|"$/, "", s); return s }
    function flush() { if (tag != "") print tag "|" parent "|" desc }
    /^  - tag:/         { flush(); tag = val($0); parent = ""; desc = ""; next }
    /^    parent:/      { parent = val($0); if (parent == "null" || parent == "~") parent = ""; next }
    /^    description:/ { desc = val($0); next }
    END                 { flush() }
  ' "$LIST"
}

# Hash of everything a deploy repository is made from (paths, modes, contents).
sources_sha() {
  (
    cd "$HERE"
    find stack releases releases.yml -name __pycache__ -prune -o -type f -printf '%m %p\n' | LC_ALL=C sort
    find stack releases releases.yml -name __pycache__ -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-64
}

# Copy a directory's files over the work tree (no byte-code caches).
overlay() {
  tar -C "$1" --exclude=__pycache__ --exclude='*.pyc' -cf - . | tar -C "$2" -xf -
}

[ -f "$LIST" ] || die "missing $LIST"
mapfile -t RELEASE_LINES < <(parse_releases)
[ ${#RELEASE_LINES[@]} -gt 0 ] || die "no releases in $LIST"
TAGS=()
for line in "${RELEASE_LINES[@]}"; do
  IFS='|' read -r tag parent _desc <<<"$line"
  [[ "$tag" =~ ^v[0-9A-Za-z.-]+$ ]] || die "bad tag '$tag' in $LIST"
  if [ ${#TAGS[@]} -eq 0 ]; then
    [ -z "$parent" ] || die "the first release ($tag) must have parent: null"
  else
    [ -n "$parent" ] || die "release $tag has no parent (only the first may lack one)"
    [[ " ${TAGS[*]} " == *" $parent "* ]] || die "release $tag: parent $parent must be listed before it"
    [ -d "$RELEASES/$tag" ] || die "missing $RELEASES/$tag/"
  fi
  TAGS+=("$tag")
done
SRC_SHA=$(sources_sha)

if [ -e "$DEST" ] || [ -L "$DEST" ]; then
  [ -d "$DEST" ] || die "$DEST exists and is not a directory: refusing to touch it"
  if [ -n "$(ls -A "$DEST")" ]; then
    top=$(git -C "$DEST" rev-parse --show-toplevel 2>/dev/null || true)
    if [ "$top" != "$(cd "$DEST" && pwd -P)" ] || [ "$(git -C "$DEST" config --local --get "$MARKER" 2>/dev/null)" != true ]; then
      die "$DEST exists and is not a deploy repository made by this script: refusing to touch it"
    fi
    missing=()
    for tag in "${TAGS[@]}"; do
      git -C "$DEST" rev-parse -q --verify "refs/tags/$tag" >/dev/null || missing+=("$tag")
    done
    [ ${#missing[@]} -eq 0 ] || die "$DEST lacks the tags ${missing[*]}: remove it and run again"
    [ "$(git -C "$DEST" config --local --get aiwfe.sourcesha256 2>/dev/null)" = "$SRC_SHA" ] \
      || die "$DEST was made from other release sources: remove it and run again"
    say "$DEST is up to date (${#TAGS[@]} releases): nothing changed"
    exit 0
  fi
fi

# Build in a temporary directory beside DEST, then move it into place.
parent_dir=$(dirname "$DEST")
mkdir -p "$parent_dir"
WORK=$(mktemp -d "$parent_dir/.deploy-repo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 0755 "$WORK"

git() { command git -C "$WORK" "$@"; }
git init -q -b main
git config user.name "Notes Release Bot"
git config user.email "release-bot@notes.invalid"
git config commit.gpgsign false
git config tag.gpgsign false
git config "$MARKER" true

i=0
for line in "${RELEASE_LINES[@]}"; do
  IFS='|' read -r tag parent desc <<<"$line"
  if [ -z "$parent" ]; then
    overlay "$STACK" "$WORK"
  else
    git checkout -q --detach "refs/tags/$parent"
    overlay "$RELEASES/$tag" "$WORK"
  fi
  [ -f "$WORK/.env" ] || die "release $tag has no .env"
  if grep -q "^$RELEASE_VAR=" "$WORK/.env"; then
    sed -i "s/^$RELEASE_VAR=.*/$RELEASE_VAR=$tag/" "$WORK/.env"
  else
    printf '%s=%s\n' "$RELEASE_VAR" "$tag" >> "$WORK/.env"
  fi
  git add -A
  export GIT_AUTHOR_DATE="$((BASE_DATE + i * 86400)) +0000"
  export GIT_COMMITTER_DATE="$GIT_AUTHOR_DATE"
  git commit -q -m "release $tag: $desc"
  git tag -a "$tag" -m "release $tag: $desc"
  i=$((i + 1))
done
git checkout -q --detach "refs/tags/${TAGS[0]}"
git config aiwfe.sourcesha256 "$SRC_SHA"

[ ! -d "$DEST" ] || rmdir "$DEST"
mv "$WORK" "$DEST"
trap - EXIT
say "created $DEST with ${#TAGS[@]} releases (${TAGS[*]}); HEAD detached at ${TAGS[0]}"
