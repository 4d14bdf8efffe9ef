#!/usr/bin/env bash
# Everything `make test` runs, stage by stage, with a summary at the end. Exits non-zero when any
# stage fails. Stages: sanity, units, lint, build (galaxy build + install + ansible-doc), operator (the operator project), molecule (which includes
# the scenario engine_20 on Debian 12's Docker 20.10; alone: stage engine20).
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

# Molecule runs in three lanes side by side (the scenarios spend most of their time waiting for containers, and
# this 2-core machine has CPU to spare then). Each scenario has its own project, ports, ledger and directories;
# release_rollbacks, the only one that prunes an image, builds its app images under its own repository
# (AIWFE_IMAGE_REPO in its molecule.yml). The base images are built once before the lanes start, so the lanes
# never build the same tag at the same time. Lanes A and B are listed; every other scenario runs in lane C, and
# engine_20 (Docker 20.10, started beside the machine's engine) last in lane C. The lanes are balanced by the
# scenarios' times in the last full run (the summary prints them). AIWFE_MOLECULE_LANES=1 runs them one after another.
# chaos shares migration_faults' app images (AIWFE_IMAGE_REPO=aiwfe-fault): both stay in one lane, one after the other.
# fleet deploys five reference stacks (two at a time): beside the lanes it pushed the load to 35 and another lane's
# deploy missed its health gate (pythonpath_rollback, fresh-clone run at 278f6ca), so it runs alone after the lanes.
MOLECULE_LANE_A=(release_rollbacks postgres_dump migration_faults chaos alembic_rollback)
MOLECULE_LANE_B=(migrations blue_green flask_migrate backup_restore lock tls_rollback)
MOLECULE_ALONE=(fleet)
# The fault-injection suite (make chaos; README "Faults survived"): part of the molecule stage, or on its own.
CHAOS_SCENARIOS=(chaos migration_faults)

# --- Debian 12's own Docker 20.10 for the scenarios engine_20 and engine_faults: scripts/engine20.sh ---
# shellcheck source=scripts/engine20.sh
. "$ROOT/scripts/engine20.sh"

# The scenario engine_20: molecule inside the 20.10 engine's network namespace, DOCKER_HOST its socket.
run_engine20_scenario() {
  local i
  for ((i = 0; i < 600; i++)); do
    [ -s "$E20_READY" ] && break
    sleep 1
  done
  [ "$(cat "$E20_READY" 2>/dev/null)" = ok ] || { log "Docker 20.10 is not ready (see above)"; return 1; }
  molecule reset -s engine_20 >/dev/null 2>&1 || true
  nsenter "--net=/run/netns/$E20_NAME" env "AIWFE_ENGINE20_DOCKER_HOST=unix://$E20_SOCK" \
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks molecule test -s engine_20
}

run_scenarios() {
  local scenario rc=0 why
  for scenario in "$@"; do
    local start=$SECONDS
    if [ "$scenario" = engine_20 ]; then
      why=$(engine20_missing)
      if [ -n "$why" ]; then
        # CI and `make setup` machines are Debian as root with docker.io installed: there it always runs.
        echo "[aiwfe] scenario engine_20 SKIPPED: $why (docs/engines.md)"
        continue
      fi
      if run_engine20_scenario; then
        echo "[aiwfe] scenario engine_20 passed in $((SECONDS - start)) s"
      else
        echo "[aiwfe] scenario engine_20 FAILED after $((SECONDS - start)) s"
        rc=1
      fi
      continue
    fi
    # A state file left by an earlier run would make molecule skip prepare: start from nothing.
    molecule reset -s "$scenario" >/dev/null 2>&1 || true
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

# Start the 20.10 engine in the background (while the lanes run), unless it cannot run here.
engine20_start_background() {
  E20_UP_PID=""
  [ -z "$(engine20_missing)" ] || return 0
  engine20_up > "$LOGDIR/engine20-up.log" 2>&1 &
  E20_UP_PID=$!
}

stage_molecule() {
  local scenario all=() lane_a=() lane_b=() lane_c=() alone=() rc=0
  drop_stale_copy
  # Every scenario directory; engine_20 last (its engine starts and takes its images while the others run).
  for scenario in molecule/*/; do
    scenario=$(basename "$scenario")
    [ "$scenario" = engine_20 ] || all+=("$scenario")
  done
  [ ! -d molecule/engine_20 ] || all+=(engine_20)
  "$ROOT/examples/reference_stack/build-images.sh" || return 1
  # The 20.10 engine starts and takes its images while the other scenarios run.
  [[ " ${all[*]} " != *" engine_20 "* ]] || engine20_start_background
  if [ "${AIWFE_MOLECULE_LANES:-2}" = 1 ]; then
    run_scenarios "${all[@]}" || rc=1
  else
    for scenario in "${all[@]}"; do
      if [[ " ${MOLECULE_ALONE[*]} " == *" $scenario "* ]]; then alone+=("$scenario")
      elif [[ " ${MOLECULE_LANE_A[*]} " == *" $scenario "* ]]; then lane_a+=("$scenario")
      elif [[ " ${MOLECULE_LANE_B[*]} " == *" $scenario "* ]]; then lane_b+=("$scenario")
      else lane_c+=("$scenario"); fi
    done
    log "molecule lane A: ${lane_a[*]} (log: build/test-logs/molecule-lane-a.log)"
    log "molecule lane B: ${lane_b[*]} (log: build/test-logs/molecule-lane-b.log)"
    log "molecule lane C: ${lane_c[*]} (log: build/test-logs/molecule-lane-c.log)"
    log "molecule alone, after the lanes: ${alone[*]} (log: build/test-logs/molecule-alone.log)"
    local lane_start=$SECONDS
    (run_scenarios "${lane_a[@]}"; rc_a=$?; echo "[aiwfe] lane A ended after $((SECONDS - lane_start)) s"; exit $rc_a) \
      > "$LOGDIR/molecule-lane-a.log" 2>&1 &
    local pid_a=$!
    (run_scenarios "${lane_b[@]}"; rc_b=$?; echo "[aiwfe] lane B ended after $((SECONDS - lane_start)) s"; exit $rc_b) \
      > "$LOGDIR/molecule-lane-b.log" 2>&1 &
    local pid_b=$!
    (run_scenarios "${lane_c[@]}"; rc_c=$?; echo "[aiwfe] lane C ended after $((SECONDS - lane_start)) s"; exit $rc_c) \
      > "$LOGDIR/molecule-lane-c.log" 2>&1 || rc=1
    wait "$pid_a" || rc=1
    wait "$pid_b" || rc=1
    local alone_start=$SECONDS
    (run_scenarios "${alone[@]}"; rc_d=$?; echo "[aiwfe] alone ended after $((SECONDS - alone_start)) s"; exit $rc_d) \
      > "$LOGDIR/molecule-alone.log" 2>&1 || rc=1
    # The lanes' output, one after the other, for the CI log.
    cat "$LOGDIR"/molecule-lane-{a,b,c}.log "$LOGDIR/molecule-alone.log"
    grep -h -e '^\[aiwfe\] scenario ' -e '^\[aiwfe\] lane ' -e '^\[aiwfe\] alone ' \
      "$LOGDIR"/molecule-lane-{a,b,c}.log "$LOGDIR/molecule-alone.log"
  fi
  if [ -n "${E20_UP_PID:-}" ]; then
    wait "$E20_UP_PID" || true
    cat "$LOGDIR/engine20-up.log"
    engine20_down
  fi
  return $rc
}

# The operator project (examples/operator): every wrapper syntax-checked with both inventories, every aiwfe_* variable
# the roles read defined there, ansible-lint, and the credentials role's password file life cycle for real
# (scripts/check_operator_project.sh). Its rollback itself runs in molecule/full_rollback.
stage_operator() {
  drop_stale_copy
  "$ROOT/scripts/check_operator_project.sh"
}

# The fault-injection scenarios alone (make chaos).
stage_chaos() {
  drop_stale_copy
  "$ROOT/examples/reference_stack/build-images.sh" || return 1
  run_scenarios "${CHAOS_SCENARIOS[@]}"
}

# The scenario engine_20 alone (make engine20): Debian 12's 20.10 engine, the quick rollback on it, engine stopped.
stage_engine20() {
  local why rc=0
  why=$(engine20_missing)
  [ -z "$why" ] || { log "cannot run Docker 20.10 here: $why"; return 1; }
  drop_stale_copy
  "$ROOT/examples/reference_stack/build-images.sh" || return 1
  engine20_up || { engine20_down; return 1; }
  run_scenarios engine_20 || rc=1
  engine20_down
  return $rc
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(sanity units lint build operator molecule)
for s in "${stages[@]}"; do
  declare -F "stage_$s" >/dev/null || die "unknown stage '$s' (known: sanity units lint build operator molecule chaos engine20)"
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
