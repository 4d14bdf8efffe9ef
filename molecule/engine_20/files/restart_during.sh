#!/usr/bin/env bash
# The Docker daemon restarted in the middle of a rollback (molecule/engine_20, side_effect): runs a playbook in the
# background as an operator would (its own ansible-playbook and process group), waits until the rollback has created
# a container of SERVICE from RELEASE (its image's org.aiwfe.release label; compose is bringing the target up), then
# restarts the 20.10 engine (scripts/engine20.sh restart: SIGTERM, start again) and lets the playbook end by itself.
# Prints one JSON object: rc, when the restart began and ended, the project's container states after.
#
#   restart_during.sh PROJECT SERVICE RELEASE LOG -- ansible-playbook ARGS...
set -euo pipefail

project=$1 service=$2 release=$3 log=$4
shift 4
[ "${1:-}" = "--" ] && shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
stamp() { date -u +%s.%N; }
states() {
  docker ps -a --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.oneoff=False" \
    --format '{{.Label "com.docker.compose.service"}}={{.State}}' 2>/dev/null | sort | paste -sd' ' -
}

setsid "$@" >"$log" 2>&1 </dev/null &
pb=$!
trap 'kill -KILL -- "-$pb" 2>/dev/null || true' EXIT
started=$(stamp) restart_began="" restart_ended="" seen=""
deadline=$((SECONDS + 240))
while [ $SECONDS -lt $deadline ] && kill -0 "$pb" 2>/dev/null; do
  seen=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$service" --filter "label=org.aiwfe.release=$release" 2>/dev/null || true)
  if [ -n "$seen" ]; then
    restart_began=$(stamp)
    bash "$root/scripts/engine20.sh" restart >&2
    restart_ended=$(stamp)
    break
  fi
  sleep 0.1
done
deadline=$((SECONDS + 300))
while kill -0 "$pb" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
if kill -0 "$pb" 2>/dev/null; then kill -KILL -- "-$pb" 2>/dev/null || true; fi
rc=0
wait "$pb" || rc=$?
trap - EXIT
jq -n --arg rc "$rc" --arg started "$started" --arg began "$restart_began" --arg ended "$restart_ended" \
  --arg states "$(states)" \
  '{rc: ($rc | tonumber), started: $started, restart_began: $began, restart_ended: $ended, states_after: $states}'
