#!/usr/bin/env bash
# make demo: the main job on the embedded default (inventories/local + the reference stack).
# Deploys a good release, breaks it with a crash-looping release, rolls back with
# playbooks/rollback_quick.yml and shows the health before and after and the time it took.
#   scripts/demo.sh [--clean]     (--clean stops the demo stack; its volumes are kept)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
INV=inventories/local
GOOD=${AIWFE_DEMO_GOOD:-v1.2.0}
BAD=${AIWFE_DEMO_BAD:-v1.3.0-crashloop}
DIR=/srv/aiwfe-reference/ai_workflow_engine

if [ "${1:-}" = --clean ]; then
  [ -f "$DIR/compose.yaml" ] || exit 0
  docker compose -p ai_workflow_engine --project-directory "$DIR" down
  exit 0
fi

banner() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
play() { ansible-playbook -i "$INV" "$@"; }

banner "1/5 make the reference stack (images, deploy repository) and deploy the good release $GOOD"
play examples/reference_stack/prepare.yml
play playbooks/deploy.yml -e aiwfe_release="$GOOD"

banner "2/5 health before the incident"
play playbooks/verify.yml | grep -E '^ *- (OK|FAIL) ' || true

banner "3/5 deploy the broken release $BAD (crash-looping image): the deploy fails its health gate"
# The automatic rollback is switched off here so that the demo can show the on-call engineer's command (step 4).
if play playbooks/deploy.yml -e aiwfe_release="$BAD" -e aiwfe_health_timeout=30 -e aiwfe_deploy_auto_rollback=false; then
  die "the broken release deployed as healthy: the demo's premise is wrong"
fi
play playbooks/verify.yml -e verify_fail=false -e verify_timeout=0 | grep -E '^ *- (OK|FAIL) ' || true

banner "4/5 quick rollback: ansible-playbook playbooks/rollback_quick.yml -i $INV"
start=$EPOCHREALTIME
play playbooks/rollback_quick.yml
end=$EPOCHREALTIME

banner "5/5 health after the rollback"
play playbooks/verify.yml | grep -E '^ *- (OK|FAIL) ' || true
play playbooks/ledger.yml | grep -E '20[0-9]{6}T[0-9]{6}Z' || true
awk -v s="$start" -v e="$end" 'BEGIN { printf "\nTime to recovery (whole rollback_quick.yml run, Ansible start-up included): %.1f s\n", e - s }'
echo "The stack stays up (project ai_workflow_engine); 'make clean' stops it, keeping its volumes."
