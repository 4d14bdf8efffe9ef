#!/usr/bin/env bash
# Lays out build/ansible_collections/aiwfe/rollback (a copy of the checkout's files, as git sees
# them) next to the dependency collections, as ansible-test wants. Prints the collection path.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# Outside the checkout: inside it, ansible-test would ask the enclosing git repository for the file list.
BUILD="${TMPDIR:-/tmp}/aiwfe-rollback-test-$(printf %s "$ROOT" | sha256sum | cut -c1-8)/ansible_collections"
DEST="$BUILD/aiwfe/rollback"
mkdir -p "$DEST"
for dep in "$ROOT"/.venv/collections/ansible_collections/*/; do
  ns=$(basename "$dep")
  [ "$ns" = aiwfe ] && continue
  ln -sfn "$dep" "$BUILD/$ns"
done
cd "$ROOT"
listing=$(mktemp)
git ls-files -z --cached --others --exclude-standard | tr '\0' '\n' | sort > "$listing"
tr '\n' '\0' < "$listing" \
  | rsync -a --from0 --files-from=- ./ "$DEST/" 2>/dev/null \
  || die "could not copy the collection to $DEST"
# rsync's --delete does not apply with --files-from: drop whatever is not in the listing any more
# (files gone from the checkout, and ignored files such as ansible-lint's collections/ link farm).
(cd "$DEST" && find . \( -type f -o -type l \) ! -path './tests/output/*' -printf '%P\n' | sort) \
  | comm -23 - "$listing" | while IFS= read -r f; do rm -f -- "$DEST/$f"; done
rm -f "$listing"
echo "$DEST"
