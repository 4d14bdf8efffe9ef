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
git ls-files -z --cached --others --exclude-standard \
  | rsync -a --delete --from0 --files-from=- ./ "$DEST/" 2>/dev/null \
  || die "could not copy the collection to $DEST"
# --delete does not apply with --files-from; drop files that are gone from the checkout.
(cd "$DEST" && find . -type f ! -path './tests/output/*' -print0) | while IFS= read -r -d '' f; do
  [ -e "$ROOT/$f" ] || rm -f "$DEST/$f"
done
echo "$DEST"
