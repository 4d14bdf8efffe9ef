#!/usr/bin/env bash
# Everything `make test` runs, stage by stage, with a summary at the end. Exits non-zero when any
# stage fails. Stages: sanity, units, lint, build (galaxy build + install + ansible-doc), molecule.
# Run one stage: scripts/test.sh units
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.venv/collections"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
LOGDIR="$ROOT/build/test-logs"
mkdir -p "$LOGDIR"

declare -a NAMES=() RESULTS=() TIMES=()
run_stage() {
  local name=$1; shift
  local start=$SECONDS rc
  log "stage $name: $*"
  "$@" 2>&1 | tee "$LOGDIR/$name.log"
  rc=${PIPESTATUS[0]}
  NAMES+=("$name"); TIMES+=("$((SECONDS - start))")
  if [ "$rc" = 0 ]; then RESULTS+=(passed); else RESULTS+=(failed); fi
}

stage_sanity() {
  local coll
  coll=$("$ROOT/scripts/collection_tree.sh") || return 1
  (cd "$coll" && ansible-test sanity --python 3.11 --color no)
}

stage_units() {
  local coll
  coll=$("$ROOT/scripts/collection_tree.sh") || return 1
  (cd "$coll" && ansible-test units --python 3.11 --color no)
}

# Molecule installs the collection it runs in into ~/.ansible/collections; a copy left there by an
# earlier run would shadow this checkout's code, so drop it before the stages that load the collection.
drop_stale_copy() {
  rm -rf "${HOME}/.ansible/collections/ansible_collections/aiwfe/rollback"
}

stage_lint() {
  drop_stale_copy
  ansible-lint --offline --profile production
}

stage_build() {
  local out="$ROOT/build/galaxy" tmp
  rm -rf "$out" && mkdir -p "$out"
  ansible-galaxy collection build --force --output-path "$out" . || return 1
  tmp=$(mktemp -d)
  ansible-galaxy collection install --force --offline --no-deps -p "$tmp" "$out"/aiwfe-rollback-*.tar.gz || return 1
  for m in $(find "$ROOT/plugins/modules" -maxdepth 1 -name "*.py" -printf "%f\n" | sed "s/\.py$//" | sort); do
    ANSIBLE_COLLECTIONS_PATH="$tmp:$ROOT/.venv/collections" ansible-doc -t module "aiwfe.rollback.$m" >/dev/null \
      || { echo "ansible-doc failed for $m"; return 1; }
  done
  for r in $(find "$ROOT/roles" -mindepth 1 -maxdepth 1 -type d -printf "%f\n" | sort); do
    ANSIBLE_COLLECTIONS_PATH="$tmp:$ROOT/.venv/collections" ansible-doc -t role "aiwfe.rollback.$r" >/dev/null \
      || { echo "ansible-doc failed for role $r"; return 1; }
  done
  rm -rf "$tmp"
  echo "built and installed $(basename "$out"/aiwfe-rollback-*.tar.gz); ansible-doc renders every module and role"
}

# Molecule runs in two lanes side by side (the scenarios spend most of their time waiting for containers, and
# this 2-core machine has CPU to spare then). Each scenario has its own project, ports, ledger and directories;
# release_rollbacks, the only one that prunes an image, builds its app images under its own repository
# (AIWFE_IMAGE_REPO in its molecule.yml). The base images are built once before the lanes start, so the lanes
# never build the same tag at the same time. AIWFE_MOLECULE_LANES=1 runs them one after another.
MOLECULE_LANE_A=(release_rollbacks lock postgres_dump volume_backup)

run_scenarios() {
  local scenario rc=0
  for scenario in "$@"; do
    # A state file left by an earlier run would make molecule skip prepare: start from nothing.
    molecule reset -s "$scenario" >/dev/null 2>&1 || true
    local start=$SECONDS
    # profile_tasks: every task's time in the log, to find what makes a scenario slow.
    if ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks molecule test -s "$scenario"; then
      echo "[aiwfe] scenario $scenario passed in $((SECONDS - start)) s"
    else
      echo "[aiwfe] scenario $scenario FAILED after $((SECONDS - start)) s"
      rc=1
    fi
  done
  return $rc
}

stage_molecule() {
  local scenario all=() lane_a=() lane_b=() rc=0
  drop_stale_copy
  for scenario in molecule/*/; do all+=("$(basename "$scenario")"); done
  if [ "${AIWFE_MOLECULE_LANES:-2}" = 1 ]; then
    run_scenarios "${all[@]}"
    return
  fi
  "$ROOT/examples/reference_stack/build-images.sh" || return 1
  for scenario in "${all[@]}"; do
    if [[ " ${MOLECULE_LANE_A[*]} " == *" $scenario "* ]]; then lane_a+=("$scenario"); else lane_b+=("$scenario"); fi
  done
  log "molecule lane A: ${lane_a[*]} (log: build/test-logs/molecule-lane-a.log)"
  log "molecule lane B: ${lane_b[*]} (log: build/test-logs/molecule-lane-b.log)"
  run_scenarios "${lane_a[@]}" > "$LOGDIR/molecule-lane-a.log" 2>&1 &
  local pid_a=$!
  run_scenarios "${lane_b[@]}" > "$LOGDIR/molecule-lane-b.log" 2>&1 || rc=1
  wait "$pid_a" || rc=1
  # Both lanes' output, one after the other, for the CI log.
  cat "$LOGDIR/molecule-lane-a.log" "$LOGDIR/molecule-lane-b.log"
  grep -h '^\[aiwfe\] scenario ' "$LOGDIR/molecule-lane-a.log" "$LOGDIR/molecule-lane-b.log"
  return $rc
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(sanity units lint build molecule)
for s in "${stages[@]}"; do
  declare -F "stage_$s" >/dev/null || die "unknown stage '$s' (known: sanity units lint build molecule)"
  run_stage "$s" "stage_$s"
done

echo
echo "== aiwfe.rollback test summary =="
passed=0 failed=0
for i in "${!NAMES[@]}"; do
  printf '  %-10s %-7s %5ss   log: build/test-logs/%s.log\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}" "${NAMES[$i]}"
  if [ "${RESULTS[$i]}" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "stages: $passed passed, $failed failed"
[ "$failed" = 0 ]
