#!/usr/bin/env bash
# Makes DEST the deploy repository of the small stack: tag v1 is stack/, tag v2 is stack/ with releases/v2/ over it
# (the broken release). HEAD is left detached at v1. A DEST that is a git repository already is left as it is.
# Usage: make-deploy-repo.sh DEST
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 DEST" >&2; exit 1; fi
DEST=$1
if [ -d "$DEST/.git" ]; then
  echo "make-deploy-repo: $DEST kept"
  exit 0
fi
mkdir -p "$DEST"
commit() {
  cp -a "$1/." "$DEST/"
  git -C "$DEST" add -A
  git -C "$DEST" -c user.name=aiwfe -c user.email=aiwfe@example.invalid commit -q -m "small stack $2"
  git -C "$DEST" -c user.name=aiwfe -c user.email=aiwfe@example.invalid tag -a "$2" -m "$2"
}
git -C "$DEST" init -q -b main
commit "$HERE/stack" v1
commit "$HERE/releases/v2" v2
git -C "$DEST" checkout -q --detach v1
echo "make-deploy-repo: $DEST created (tags v1, v2; HEAD at v1)"
