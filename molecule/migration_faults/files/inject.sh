#!/usr/bin/env bash
# Fault injection for molecule/migration_faults: runs a rollback playbook in the background, as an operator would (its
# own ansible-playbook, its own process group), waits for the moment named by MODE, injects the fault and prints one
# JSON object describing what it saw (converge.yml records it, verify.yml asserts it).
#
#   inject.sh MODE PROJECT LOG -- ansible-playbook ARGS...
#
# MODE kill-db: a reader of the application (a psql session in a long transaction that has read `documents`, like a
#   report) holds an ACCESS SHARE lock on documents, so the downgrade's `ALTER TABLE documents RENAME` waits for it
#   inside the downgrade's own transaction. Once pg_stat_activity shows the downgrade's session (application_name
#   alembic, from the throwaway `docker compose run` container of the api) waiting on that lock - the downgrade has
#   begun and not committed - the database container is killed (`docker kill`, SIGKILL). The playbook is then left to
#   fail by itself. The database is started again (by its restart policy when Docker applies it, else `docker start`,
#   as the operator would) and waited for.
# MODE kill-db-blocked: the same, but the session holds documents in ACCESS EXCLUSIVE mode, so any reader of it waits
#   (a backup's dump, a restore's dump of the state it replaces): once any other session of the database waits on a
#   lock, the database container is killed (molecule/chaos).
# MODE interrupt: polls the database's alembic_version every 50 ms; the moment it reads 0004 (the downgrade committed)
#   the whole run is killed (SIGKILL, kill_run: the playbook and its workers' sessions, the module's included), before
#   the engine starts the target release. What the
#   api containers were at that moment is recorded.
# MODE kill-in-tar: the moment a tar process whose command line holds INJECT_PATTERN (environment) runs - the tar of a
#   volume backup, its containers stopped meanwhile - the whole run is killed (SIGKILL, kill_run); the project's
#   container states at that moment are recorded (molecule/chaos).
# Every background process is waited for or killed before the script ends; nothing outside PROJECT is touched.
set -euo pipefail

mode=$1 project=$2 log=$3
shift 3
[ "${1:-}" = "--" ] && shift
dbname=ai_workflow_engine

service_container() {  # service [docker ps filters...]: the ids of the project's containers of that service
  docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1" "${@:2}"
}
oneoff_containers() {
  docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.oneoff=True"
}
sql() {  # statement: one value, empty on any error (the database may be gone)
  docker exec -u postgres "$db" psql -d "$dbname" -XAtc "$1" 2>/dev/null || true
}
stamp() { date -u +%s.%N; }
api_containers() {  # every api container of the project: id, service|oneoff, state, image id, its release label
  local id
  for id in $(service_container api -a); do
    docker inspect -f '{{.Id}} {{index .Config.Labels "com.docker.compose.oneoff"}} {{.State.Status}} {{.Image}}' "$id" |
      while read -r cid oneoff state image; do
        printf '%s %s %s %s %s\n' "${cid:0:12}" "$([ "$oneoff" = True ] && echo oneoff || echo service)" "$state" \
          "${image:7:12}" "$(docker image inspect -f '{{index .Config.Labels "org.aiwfe.release"}}' "$image" 2>/dev/null || echo gone)"
      done
  done
}
states() {  # service=state of every container of the project (one-off ones left out)
  docker ps -a --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.oneoff=False" \
    --format '{{.Label "com.docker.compose.service"}}={{.State}}' | sort | paste -sd' ' -
}

db=$(service_container postgres --filter status=running)
[ -n "$db" ] || { echo "no running postgres container in project $project" >&2; exit 2; }

pb="" blocker=""
cleanup() {
  if [ -n "$blocker" ]; then  # the reader's backend too: killing the docker exec client does not end it
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fault-reader'" >/dev/null
    kill "$blocker" 2>/dev/null || true
  fi
  if [ -n "$pb" ]; then kill -KILL -- "-$pb" 2>/dev/null || true; fi
}
trap cleanup EXIT

start_playbook() {
  # setsid: the playbook leads its own process group (pgid = $pb), as a separate operator's run would
  setsid "$@" >"$log" 2>&1 </dev/null &
  pb=$!
  started=$(stamp)
}

# SIGKILL the whole run: ansible-playbook's process group and the sessions of its workers (each Ansible worker
# process starts a session of its own, in which the module and what it runs live), as a crash would end them.
kill_run() {
  local worker
  for worker in $(pgrep -P "$pb"); do pkill -KILL -s "$worker" || true; done
  kill -KILL -- "-$pb" 2>/dev/null || true
}

wait_playbook() {  # seconds: sets rc to the playbook's exit status (killed after the timeout: 137)
  local deadline=$((SECONDS + $1))
  while kill -0 "$pb" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  if kill -0 "$pb" 2>/dev/null; then kill -KILL -- "-$pb" 2>/dev/null || true; fi
  rc=0
  wait "$pb" || rc=$?
  pb=""
}

case "$mode" in
kill-db|kill-db-blocked)
  if [ "$mode" = kill-db ]; then
    # The reader: a long transaction that has read documents (ACCESS SHARE lock until it ends); the downgrade waits.
    hold="SELECT count(*) FROM documents" waiter="application_name = 'alembic'"
  else
    # A session holding documents in ACCESS EXCLUSIVE mode (as a long migration would): whatever the run reads of the
    # database (a dump, its row counts) waits for it.
    hold="LOCK TABLE documents IN ACCESS EXCLUSIVE MODE" waiter="application_name <> 'fault-reader' AND datname = '$dbname'"
  fi
  docker exec -u postgres -e PGAPPNAME=fault-reader "$db" psql -d "$dbname" -XAtq \
    -c "BEGIN; $hold; SELECT pg_sleep(600); COMMIT;" >/dev/null 2>&1 &
  blocker=$!
  for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
               WHERE a.application_name = 'fault-reader' AND l.relation = 'public.documents'::regclass AND l.granted")" = 1 ] && break
    sleep 0.1
  done
  start_playbook "$@"
  waiting="" oneoff=""
  deadline=$((SECONDS + 240))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pb" 2>/dev/null; do
    waiting=$(sql "SELECT pid || ' ' || coalesce(to_char(xact_start, 'HH24:MI:SS.MS'), '-') || ' ' || wait_event_type
                          || ' ' || left(regexp_replace(query, '\s+', ' ', 'g'), 120)
                   FROM pg_stat_activity WHERE $waiter AND wait_event_type = 'Lock'")
    if [ -n "$waiting" ]; then
      oneoff=$(oneoff_containers | paste -sd' ' -)
      break
    fi
    sleep 0.1
  done
  revision_at_kill=$(sql "SELECT string_agg(version_num, ',') FROM alembic_version")
  killed_at=""
  if [ -n "$waiting" ]; then
    docker kill "$db" >/dev/null
    killed_at=$(stamp)
  fi
  wait_playbook 240
  ended=$(stamp)
  wait "$blocker" 2>/dev/null || true
  blocker=""
  # Docker does not apply the restart policy to a container stopped by `docker kill`: the operator starts it.
  sleep 2
  restarted_by=policy
  if [ "$(docker inspect -f '{{.State.Running}}' "$db")" != true ]; then
    docker start "$db" >/dev/null
    restarted_by="docker start"
  fi
  for _ in $(seq 1 120); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$db")" = healthy ] && break
    sleep 0.5
  done
  jq -n --arg mode "$mode" --arg rc "$rc" --arg started "$started" --arg killed_at "$killed_at" --arg ended "$ended" \
    --arg waiting "$waiting" --arg oneoff "$oneoff" --arg revision_at_kill "$revision_at_kill" \
    --arg restarted_by "$restarted_by" --arg health "$(docker inspect -f '{{.State.Health.Status}}' "$db")" \
    --arg states "$(states)" --arg leftover_oneoff "$(oneoff_containers | paste -sd' ' -)" \
    '{mode: $mode, rc: ($rc | tonumber), started: $started, killed_at: $killed_at, ended: $ended,
      alembic_waiting: $waiting, oneoff_at_kill: $oneoff, revision_at_kill: $revision_at_kill,
      restarted_by: $restarted_by, db_health: $health, states_after: $states, oneoff_after: $leftover_oneoff}'
  ;;
interrupt)
  start_playbook "$@"
  revision="" killed_at="" api_at_kill=""
  deadline=$((SECONDS + 240))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pb" 2>/dev/null; do
    revision=$(sql "SELECT string_agg(version_num, ',') FROM alembic_version")
    if [ "$revision" = 0004 ]; then
      kill_run
      killed_at=$(stamp)
      api_at_kill=$(api_containers | paste -sd',' -)
      break
    fi
    sleep 0.05
  done
  wait_playbook 30
  sleep 2  # anything the killed run had already started would show up now
  jq -n --arg mode "$mode" --arg rc "$rc" --arg started "$started" --arg killed_at "$killed_at" \
    --arg revision_at_kill "$revision" --arg api_at_kill "$api_at_kill" --arg api_after "$(api_containers | paste -sd',' -)" \
    --arg states "$(states)" --arg oneoff_after "$(oneoff_containers | paste -sd' ' -)" \
    '{mode: $mode, rc: ($rc | tonumber), started: $started, killed_at: $killed_at, revision_at_kill: $revision_at_kill,
      api_at_kill: $api_at_kill, api_after: $api_after, states_after: $states, oneoff_after: $oneoff_after}'
  ;;
kill-in-tar)
  tar_matching() {  # the tar processes whose command line holds INJECT_PATTERN: "pid args" lines
    pgrep -a -x tar | grep -F -- "$INJECT_PATTERN" || true
  }
  start_playbook "$@"
  killed_at="" states_at_kill="" matched=""
  deadline=$((SECONDS + 240))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pb" 2>/dev/null; do
    matched=$(tar_matching)
    if [ -n "$matched" ]; then
      kill_run
      killed_at=$(stamp)
      states_at_kill=$(states)
      break
    fi
    sleep 0.02
  done
  wait_playbook 30
  jq -n --arg mode "$mode" --arg rc "$rc" --arg started "$started" --arg killed_at "$killed_at" \
    --arg states_at_kill "$states_at_kill" --arg states "$(states)" --arg alive "$(tar_matching)" \
    '{mode: $mode, rc: ($rc | tonumber), started: $started, killed_at: $killed_at, states_at_kill: $states_at_kill,
      states_after: $states, matching_after: $alive}'
  ;;
*)
  echo "unknown mode $mode (kill-db, kill-db-blocked, interrupt, kill-in-tar)" >&2
  exit 2
  ;;
esac
