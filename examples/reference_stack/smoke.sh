#!/usr/bin/env bash
# End-to-end check of the reference stack on a real Docker engine, in a throwaway compose
# project (aiwfe_smoke, HTTPS on 127.0.0.1:18543, removed with `down -v` at the end):
#   - builds the base images and a deploy repository in a temporary directory,
#   - deploys v1.0.0, v1.1.0, v1.2.0 in turn: every /health ok with the right version,
#     HTTPS through caddy, jobs processed by the worker, data kept across upgrades,
#   - shows that `docker compose build` a second time is fully cached,
#   - deploys each broken release from v1.2.0, shows its symptom, rolls back to v1.2.0.
# Usage: smoke.sh   (needs `make setup` first: Docker engine, compose plugin, local/debian:bookworm)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=aiwfe_smoke
HTTPS_PORT=18543
export AIWFE_HTTPS_PORT=$HTTPS_PORT
export COMPOSE_PROJECT_NAME=$PROJECT
WAIT_TIMEOUT=120
GOOD=v1.2.0
SERVICES=(api worker memory-service perception-service reasoning-service)

WORK=$(mktemp -d /tmp/aiwfe-smoke.XXXXXX)
DEPLOY="$WORK/deploy"
T0=$SECONDS
TIMINGS=()

step() { printf '\n== [%4ds] %s\n' "$((SECONDS - T0))" "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
timing() { TIMINGS+=("$(printf '%-58s %4d s' "$1" "$2")"); printf '   time: %s: %d s\n' "$1" "$2"; }
dc() { docker compose -p "$PROJECT" "$@"; }
fail() {
  printf '\nSMOKE FAILED: %s\n' "$*" >&2
  if [ -f "$DEPLOY/compose.yaml" ]; then
    (cd "$DEPLOY" && dc ps -a && dc logs --no-color --tail 25) >&2 2>&1 || true
  fi
  exit 1
}

cleanup() {
  local rc=$?
  if [ -f "$DEPLOY/compose.yaml" ]; then
    (cd "$DEPLOY" && dc down -v --remove-orphans >/dev/null 2>&1) || true
  fi
  rm -rf "$WORK"
  if [ "$rc" = 0 ]; then
    printf '\n== timings\n'
    printf '   %s\n' "${TIMINGS[@]}"
    printf '\nSMOKE PASSED in %d s\n' "$((SECONDS - T0))"
  fi
  exit "$rc"
}
trap cleanup EXIT

# The real interpreter (a pyenv shim costs ~70 ms a call).
PY=$(python3 -c 'import sys; print(sys.executable)')
# json PATH: print a field of the JSON document on stdin (dotted path; "" when missing).
json() {
  "$PY" -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value.get(key) if isinstance(value, dict) else None
print("" if value is None else value if isinstance(value, str) else json.dumps(value))' "$1"
}

url_of() { local addr; addr=$(dc port "$1" 8000 2>/dev/null) && [ -n "$addr" ] && echo "http://$addr"; }
health_of() { local url; url=$(url_of "$1") || return 1; curl -s -m 5 "$url/health"; }
api_get() { local url; url=$(url_of api) || return 1; curl -s -m 5 "$url$1"; }
api_post() { local url; url=$(url_of api) || return 1; curl -s -m 5 -X POST -H 'Content-Type: application/json' -d "$2" "$url$1"; }
sql() { dc exec -T postgres psql -U postgres -d ai_workflow_engine -tAc "$1"; }

# Every app service and caddy report status ok and this release; api at this revision.
check_stack() {
  local tag=$1 rev=$2 svc doc
  for svc in "${SERVICES[@]}"; do
    doc=$(health_of "$svc") || fail "$svc: no /health answer"
    [ "$(json status <<<"$doc")" = ok ] || fail "$svc: /health not ok: $doc"
    [ "$(json version <<<"$doc")" = "$tag" ] || fail "$svc: version is not $tag: $doc"
  done
  doc=$(health_of api)
  [ "$(json alembic_revision <<<"$doc")" = "$rev" ] || fail "api: alembic_revision is not $rev: $doc"
  [ "$(json db <<<"$doc")" = ok ] || fail "api: db is not ok: $doc"
  doc=$(curl -sk -m 5 "https://localhost:$HTTPS_PORT/health") || fail "no HTTPS answer from caddy on :$HTTPS_PORT"
  [ "$(json service <<<"$doc")/$(json status <<<"$doc")/$(json version <<<"$doc")" = "api/ok/$tag" ] \
    || fail "https://localhost:$HTTPS_PORT/health: $doc"
  ok "5 app services report status ok, version $tag; api at revision $rev; HTTPS via caddy ok"
}

# Create N jobs and wait until the worker turned them all into documents.
check_jobs() {
  local n=$1 before after i doc pending
  before=$(api_get /stats | json tables.documents)
  for i in $(seq 1 "$n"); do
    doc=$(api_post /jobs "{\"kind\": \"smoke\", \"payload\": {\"i\": $i}, \"priority\": $i}")
    [ -n "$(json id <<<"$doc")" ] || fail "POST /jobs: $doc"
  done
  for _ in $(seq 1 60); do
    doc=$(api_get /stats)
    after=$(json tables.documents <<<"$doc")
    pending=$(json jobs_by_status.pending <<<"$doc")
    if [ "${after:-0}" -ge $((${before:-0} + n)) ] && [ -z "$pending" ]; then
      ok "worker processed $n new job(s): documents $before -> $after ($doc)"
      return 0
    fi
    sleep 0.5
  done
  fail "the worker did not process the jobs: $doc"
}

checkout() { git -C "$DEPLOY" checkout -q "$1"; }

build() {
  local t=$SECONDS
  dc build -q >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "docker compose build ($1)"; }
  timing "compose build $1" $((SECONDS - t))
}

# up -d --wait must succeed.
up_ok() {
  local t=$SECONDS
  dc up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans >"$WORK/up.log" 2>&1 \
    || { cat "$WORK/up.log" >&2; fail "docker compose up -d --wait ($1)"; }
  timing "up -d --wait $1" $((SECONDS - t))
}

# up -d --wait must fail (a broken release).
up_fails() {
  local t=$SECONDS
  if timeout $((WAIT_TIMEOUT + 30)) docker compose -p "$PROJECT" up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans >"$WORK/up.log" 2>&1; then
    fail "docker compose up -d --wait succeeded for $1, a broken release"
  fi
  timing "up -d --wait $1 (fails)" $((SECONDS - t))
  ok "up -d --wait fails: $(grep -v -e Running -e Healthy -e Waiting -e Started -e Recreate -e Created -e Starting -e Stopp "$WORK/up.log" | tr -s ' ' | tail -n 1)"
}

# A service's logs contain a text (waits a little: logs of a restarting container).
logs_show() {
  local svc=$1 text=$2
  for _ in $(seq 1 30); do
    if dc logs --no-color "$svc" 2>&1 | grep -F -q -- "$text"; then
      ok "logs of $svc: $(dc logs --no-color "$svc" 2>&1 | grep -F -- "$text" | tail -n 1 | sed 's/^[^|]*| //')"
      return 0
    fi
    sleep 1
  done
  fail "the logs of $svc do not show '$text'"
}

restarting() {
  local svc=$1 id count
  id=$(dc ps -a -q "$svc")
  [ -n "$id" ] || fail "$svc: no container"
  for _ in $(seq 1 30); do
    count=$(docker inspect -f '{{.RestartCount}}' "$id")
    if [ "$count" -ge 1 ]; then
      ok "$svc is in a restart loop (state $(docker inspect -f '{{.State.Status}}' "$id"), restarts $count)"
      return 0
    fi
    sleep 1
  done
  fail "$svc does not restart"
}

rollback_good() {
  step "roll back to $GOOD"
  checkout "$GOOD"
  up_ok "$GOOD (rollback)"
  check_stack "$GOOD" 0004
  check_jobs 1
}

# ---------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || fail "docker is missing: run make setup first"
docker compose version >/dev/null 2>&1 || fail "docker compose is missing: run make setup first"
port_owner=$(docker ps --filter "publish=$HTTPS_PORT" --format '{{.Names}}' | grep -v "^${PROJECT}-" || true)
[ -z "$port_owner" ] || fail "port $HTTPS_PORT is used by $port_owner"

step "base images"
t=$SECONDS
"$HERE/build-images.sh"
timing "build-images.sh" $((SECONDS - t))

step "deploy repository in $DEPLOY"
t=$SECONDS
"$HERE/make-deploy-repo.sh" "$DEPLOY"
"$HERE/make-deploy-repo.sh" "$DEPLOY" | grep -q "nothing changed" || fail "make-deploy-repo.sh is not idempotent"
timing "make-deploy-repo.sh (twice)" $((SECONDS - t))
cd "$DEPLOY"
mkdir -p secrets
chmod 0700 secrets
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > secrets/postgres_password)
ok "secret written (secrets/postgres_password, mode $(stat -c %a secrets/postgres_password))"
dc down -v --remove-orphans >/dev/null 2>&1 || true

for spec in v1.0.0:0002 v1.1.0:0003 v1.2.0:0004; do
  tag=${spec%%:*}
  step "deploy $tag"
  checkout "$tag"
  build "$tag"
  up_ok "$tag"
  check_stack "$tag" "${spec##*:}"
  check_jobs 3
done
features=$(api_get / | json features)
[ "$features" = '["jobs", "documents", "memories", "priority"]' ] || fail "api features: $features"
ok "api features of $GOOD: $features; memories: $(api_get /stats | json tables.memories)"

step "runbook commands on $GOOD"
dc exec -T api env | grep -qx 'PYTHONPATH=/opt/app/api:/opt/app/common' || fail "api PYTHONPATH"
ok "docker compose exec api env | grep PYTHONPATH: $(dc exec -T api env | grep '^PYTHONPATH=')"
[ "$(dc exec -T api python -c "from app.database import engine; engine.connect().close(); print('DB OK')")" = "DB OK" ] || fail "app.database"
ok "docker compose exec api python -c 'from app.database import engine ...': DB OK"
[ "$(dc exec -T perception-service curl -s http://memory-service:8000/health | json status)" = ok ] || fail "curl memory-service from perception-service"
ok "docker compose exec perception-service curl http://memory-service:8000/health: ok"
[ "$(sql "SELECT version_num FROM alembic_version")" = 0004 ] || fail "psql"
ok "docker compose exec postgres psql -U postgres -d ai_workflow_engine: alembic_version 0004"
scripts/health_check.sh -p "$PROJECT" | sed 's/^/   | /'

step "second build of $GOOD is fully cached"
ids() { for s in "${SERVICES[@]}"; do docker image inspect -f '{{.Id}}' "aiwfe/$s:$GOOD"; done; }
before=$(ids)
t=$SECONDS
dc build >"$WORK/build2.log" 2>&1 || fail "second build"
timing "compose build $GOOD (second time)" $((SECONDS - t))
[ "$before" = "$(ids)" ] || fail "the second build made new images"
ok "same image ids, $(grep -c CACHED "$WORK/build2.log" || true) cached steps"
t=$SECONDS
"$HERE/build-images.sh" | grep -c "up to date" | grep -qx 3 || fail "build-images.sh rebuilt something"
timing "build-images.sh (second time)" $((SECONDS - t))

# ---------------------------------------------------------------------------------------
step "v1.3.0-crashloop"
checkout v1.3.0-crashloop
build v1.3.0-crashloop
up_fails v1.3.0-crashloop
restarting reasoning-service
logs_show reasoning-service "KeyError: 'REASONING_MODEL'"
rollback_good

step "v1.3.0-pythonpath"
checkout v1.3.0-pythonpath
build v1.3.0-pythonpath
docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' aiwfe/api:v1.3.0-pythonpath | grep -qx 'PYTHONPATH=/opt/app/src' \
  || fail "aiwfe/api:v1.3.0-pythonpath has not the wrong PYTHONPATH"
up_fails v1.3.0-pythonpath
restarting api
logs_show api "ModuleNotFoundError: No module named 'aiwfe_api'"
# compose never got to the worker (it waits for a healthy api): start it alone to show it fails too.
dc up -d --no-deps worker >/dev/null 2>&1
restarting worker
logs_show worker "ModuleNotFoundError: No module named 'aiwfe_worker'"
rollback_good

step "v1.3.0-dependency"
checkout v1.3.0-dependency
build v1.3.0-dependency
up_fails v1.3.0-dependency
doc=$(health_of perception-service) || fail "perception-service: no /health answer"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url_of perception-service)/health")
[ "$code" = 503 ] || fail "perception-service /health answered $code, not 503: $doc"
case "$(json checks.memory-service <<<"$doc")" in
  *"Connection refused"*) ok "perception-service /health 503: $doc" ;;
  *) fail "perception-service /health: $doc" ;;
esac
logs_show perception-service "check memory-service failed"
rollback_good

step "v1.3.0-migration-incompatible (good on its own; image-only rollback breaks)"
checkout v1.3.0-migration-incompatible
build v1.3.0-migration-incompatible
up_ok v1.3.0-migration-incompatible
check_stack v1.3.0-migration-incompatible 0005
check_jobs 2
docs=$(sql "SELECT count(*) FROM documents")
sum=$(sql "SELECT md5(string_agg(content, '|' ORDER BY id)) FROM documents")
ok "documents: $docs rows, column content (md5 of all texts $sum)"
step "image-only rollback to $GOOD (no downgrade): must break"
checkout "$GOOD"
up_fails "$GOOD, DB still at 0005"
restarting api
logs_show api "Can't locate revision identified by '0005'"
step "proper rollback: alembic downgrade 0004 with the v1.3.0 image, then $GOOD"
t=$SECONDS
AIWFE_RELEASE=v1.3.0-migration-incompatible dc run --rm --no-deps -T api \
  python3 -m alembic -c /opt/app/api/alembic.ini downgrade 0004 >"$WORK/downgrade.log" 2>&1 \
  || { cat "$WORK/downgrade.log" >&2; fail "alembic downgrade 0004"; }
timing "alembic downgrade 0004 (compose run)" $((SECONDS - t))
ok "$(grep -F 'Running downgrade' "$WORK/downgrade.log" | sed 's/^.*\] //')"
[ "$(sql "SELECT md5(string_agg(body, '|' ORDER BY id)) FROM documents")" = "$sum" ] || fail "documents.body lost data"
ok "documents.body is back with the same $docs rows (md5 $sum)"
rollback_good

step "v1.3.0-migration-halfway"
checkout v1.3.0-migration-halfway
build v1.3.0-migration-halfway
up_fails v1.3.0-migration-halfway
restarting api
logs_show api 'column "attempt_count" does not exist'
[ "$(sql "SELECT version_num FROM alembic_version")" = 0004 ] || fail "alembic_version moved"
[ "$(sql "SELECT count(*) FROM information_schema.columns WHERE table_name = 'jobs' AND column_name = 'attempts'")" = 0 ] \
  || fail "jobs.attempts exists: the failed migration was not rolled back"
ok "transactional DDL: alembic_version still 0004, no jobs.attempts column"
rollback_good

step "v1.3.0-bad-caddyfile"
checkout v1.3.0-bad-caddyfile
build v1.3.0-bad-caddyfile
# A bind-mounted Caddyfile that changed does not make compose recreate caddy: restart it.
dc up -d --wait --wait-timeout "$WAIT_TIMEOUT" >/dev/null 2>&1 || true
dc restart caddy_reverse_proxy >/dev/null 2>&1 || true
up_fails v1.3.0-bad-caddyfile
restarting caddy_reverse_proxy
logs_show caddy_reverse_proxy "Unexpected EOF"
if curl -sk -m 3 "https://localhost:$HTTPS_PORT/health" >/dev/null; then fail "HTTPS still answers"; fi
ok "no HTTPS on :$HTTPS_PORT"
checkout "$GOOD"
dc restart caddy_reverse_proxy >/dev/null 2>&1 || true
rollback_good

step "the password appears in no log"
if dc logs --no-color 2>&1 | grep -F -q -- "$(cat secrets/postgres_password)"; then fail "the password is in the logs"; fi
ok "not in docker compose logs (all services)"

step "stop times"
t=$(date +%s.%N)
dc stop >/dev/null 2>&1
t2=$(date +%s.%N)
dc start >/dev/null 2>&1
dc up -d --wait --wait-timeout "$WAIT_TIMEOUT" >/dev/null 2>&1 || fail "restart after stop"
check_stack "$GOOD" 0004
t3=$(date +%s.%N)
dc down >/dev/null 2>&1
t4=$(date +%s.%N)
stop_s=$("$PY" -c "print(round($t2 - $t, 1))")
down_s=$("$PY" -c "print(round($t4 - $t3, 1))")
ok "docker compose stop: $stop_s s, down: $down_s s (7 containers)"
"$PY" -c "import sys; sys.exit(0 if $down_s < 8 else 1)" || fail "down is slow ($down_s s)"
