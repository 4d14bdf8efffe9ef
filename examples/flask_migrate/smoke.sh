#!/usr/bin/env bash
# End-to-end check of the notes example on a real Docker engine, in a throwaway compose project
# (notes_smoke, web on an ephemeral loopback port, removed with `down -v` at the end):
#   - makes a deploy repository in a temporary directory (twice: idempotent) and the secret,
#   - deploys v1 (flask db upgrade on start), writes notes; deploys v2 (upgrade on start adds notes.body),
#     writes notes with a body,
#   - shows the symptom of an image-only rollback: the v1 image cannot upgrade a database at v2's revision,
#   - rolls the database back by hand with the v2 image (`docker compose run --rm --no-deps -T web flask db
#     downgrade -d /app/migrations REV`; before it, the offline SQL of that downgrade with --sql), checks the column
#     is gone, deploys v1: it starts and serves the old notes,
#   - v3-broken: migrates (table note_tags, foreign key to notes), then crash-loops; the v2 image cannot start on its
#     schema; downgrade with the v3-broken image (the collection's form: --entrypoint flask), v2 healthy again,
#   - the password appears in no log and no container config; stop times.
# Images: aiwfe-example-smoke/notes-web:<tag> and aiwfe-example-smoke/notes-db:15 (NOTES_SMOKE_IMAGE_REPO), kept.
# Usage: smoke.sh   (needs `make setup` first: Docker engine, compose plugin, local/debian:bookworm)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=notes_smoke
export COMPOSE_PROJECT_NAME=$PROJECT
WAIT_TIMEOUT=120
MIGRATIONS=/app/migrations
REV1=3f6c1a9e2b70
REV2=8d2e4b7a1c95
REV3=c47a0e93d1f6
# Its own image repository: compose labels the images it builds with the project, so a build under notes_smoke
# would move the tags of a deployed notes project (aiwfe-example/...) to other image ids. The images are kept (the
# next run's build cache); remove them with docker image rm aiwfe-example-smoke/notes-web:v1 ...
IMAGE_REPO=${NOTES_SMOKE_IMAGE_REPO:-aiwfe-example-smoke}
export NOTES_IMAGE_REPO=$IMAGE_REPO

WORK=$(mktemp -d /tmp/notes-smoke.XXXXXX)
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
# json PATH: print a field of the JSON document on stdin (dotted path, numbers index lists; "" when missing).
json() {
  "$PY" -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    if isinstance(value, list) and key.isdigit():
        value = value[int(key)] if int(key) < len(value) else None
    else:
        value = value.get(key) if isinstance(value, dict) else None
print("" if value is None else value if isinstance(value, str) else json.dumps(value))' "$1"
}

url() { local addr; addr=$(dc port web 5000 2>/dev/null) && [ -n "$addr" ] && echo "http://$addr"; }
get() { local base; base=$(url) || return 1; curl -s -m 5 "$base$1"; }
post() { local base; base=$(url) || return 1; curl -s -m 5 -X POST -H 'Content-Type: application/json' -d "$2" "$base$1"; }
sql() { dc exec -T db psql -X -U notes -d notes -tAc "$1"; }
has_body() { sql "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'body'"; }
checkout() { git -C "$DEPLOY" checkout -q "$1"; }

build() {
  local t=$SECONDS
  dc build -q >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "docker compose build ($1)"; }
  timing "compose build $1" $((SECONDS - t))
}

up_ok() {
  local t=$SECONDS
  dc up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans >"$WORK/up.log" 2>&1 \
    || { cat "$WORK/up.log" >&2; fail "docker compose up -d --wait ($1)"; }
  timing "up -d --wait $1" $((SECONDS - t))
}

up_fails() {
  local t=$SECONDS
  if timeout $((WAIT_TIMEOUT + 30)) docker compose -p "$PROJECT" up -d --wait --wait-timeout "$WAIT_TIMEOUT" --remove-orphans >"$WORK/up.log" 2>&1; then
    fail "docker compose up -d --wait succeeded for $1"
  fi
  timing "up -d --wait $1 (fails)" $((SECONDS - t))
  ok "up -d --wait fails: $(grep -v -e Running -e Healthy -e Waiting -e Started -e Recreate -e Created -e Starting -e Stopp "$WORK/up.log" | tr -s ' ' | tail -n 1)"
}

# /healthz: status ok, this release, the database at this revision.
check_web() {
  local tag=$1 rev=$2 doc
  doc=$(get /healthz) || fail "web: no /healthz answer"
  [ "$(json status <<<"$doc")" = ok ] || fail "web /healthz not ok: $doc"
  [ "$(json version <<<"$doc")" = "$tag" ] || fail "web: version is not $tag: $doc"
  [ "$(json alembic_revision <<<"$doc")" = "$rev" ] || fail "web: alembic_revision is not $rev: $doc"
  [ "$(sql "SELECT version_num FROM alembic_version")" = "$rev" ] || fail "alembic_version is not $rev"
  ok "web /healthz ok, version $tag, database at $rev ($(url)); docker health $(docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q web)")"
}

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

# ---------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || fail "docker is missing: run make setup first"
docker compose version >/dev/null 2>&1 || fail "docker compose is missing: run make setup first"
docker image inspect local/debian:bookworm >/dev/null 2>&1 || fail "local/debian:bookworm is missing: run make setup first"

step "deploy repository in $DEPLOY"
t=$SECONDS
"$HERE/make-deploy-repo.sh" "$DEPLOY"
"$HERE/make-deploy-repo.sh" "$DEPLOY" | grep -q "nothing changed" || fail "make-deploy-repo.sh is not idempotent"
timing "make-deploy-repo.sh (twice)" $((SECONDS - t))
cd "$DEPLOY"
mkdir -p secrets
chmod 0700 secrets
(umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 > secrets/db_password)
ok "secret written (secrets/db_password, mode $(stat -c %a secrets/db_password))"
dc down -v --remove-orphans >/dev/null 2>&1 || true

step "deploy v1"
checkout v1
build v1
up_ok v1
check_web v1 "$REV1"
for title in first second; do
  doc=$(post /notes "{\"title\": \"$title\"}")
  [ -n "$(json id <<<"$doc")" ] || fail "POST /notes: $doc"
done
V1_NOTES=$(get /notes)
[ "$(json notes.1.title <<<"$V1_NOTES")" = second ] || fail "GET /notes: $V1_NOTES"
ok "2 notes written: $V1_NOTES"
[ "$(has_body)" = 0 ] || fail "notes.body exists at v1"

step "deploy v2 (flask db upgrade on start adds notes.body)"
checkout v2
build v2
up_ok v2
check_web v2 "$REV2"
logs_show web "Running upgrade $REV1 -> $REV2"
[ "$(has_body)" = 1 ] || fail "no notes.body at v2"
doc=$(post /notes '{"title": "third", "body": "written by v2"}')
[ "$(json body <<<"$doc")" = "written by v2" ] || fail "POST /notes with body: $doc"
doc=$(get /notes)
{ [ "$(json notes.0.body <<<"$doc")" = "" ] && [ "$(json notes.2.body <<<"$doc")" = "written by v2" ]; } || fail "GET /notes at v2: $doc"
[ "$(get / | json features)" = '["body"]' ] || fail "features at v2: $(get /)"
ok "notes at v2 (older ones without body): $doc"

step "image-only rollback to v1 (database still at $REV2): the v1 image cannot start"
t=$SECONDS
if NOTES_RELEASE=v1 dc run --rm --no-deps -T web flask db upgrade >"$WORK/v1-upgrade.log" 2>&1; then
  fail "the v1 image upgraded a database at $REV2"
fi
timing "v1's flask db upgrade on the v2 schema (fails)" $((SECONDS - t))
grep -F -q "Can't locate revision identified by '$REV2'" "$WORK/v1-upgrade.log" || { cat "$WORK/v1-upgrade.log" >&2; fail "v1's upgrade error"; }
ok "v1's flask db upgrade: $(grep -F "Can't locate revision" "$WORK/v1-upgrade.log" | tail -n 1)"

step "database rollback by hand: flask db downgrade with the v2 image, writers stopped"
t=$SECONDS
docker run --rm --network none "$IMAGE_REPO/notes-web:v2" flask db downgrade -d "$MIGRATIONS" --sql "$REV2:$REV1" \
  >"$WORK/downgrade.sql" 2>"$WORK/downgrade-sql.log" || { cat "$WORK/downgrade-sql.log" >&2; fail "flask db downgrade --sql (offline, no network, no secret)"; }
grep -F -q "ALTER TABLE notes DROP COLUMN body;" "$WORK/downgrade.sql" || { cat "$WORK/downgrade.sql" >&2; fail "offline SQL"; }
dc run --rm --no-deps -T web flask db downgrade -d "$MIGRATIONS" --sql "$REV2:$REV1" >"$WORK/downgrade2.sql" 2>/dev/null \
  || fail "flask db downgrade --sql through compose run"
grep -F -q "ALTER TABLE notes DROP COLUMN body;" "$WORK/downgrade2.sql" || fail "offline SQL through compose run"
timing "flask db downgrade --sql (twice)" $((SECONDS - t))
ok "offline SQL (no network, no secret; and through compose run): $(grep -c . "$WORK/downgrade.sql") lines, $(grep -F 'DROP COLUMN' "$WORK/downgrade.sql")"
dc stop web >/dev/null 2>&1
t=$SECONDS
dc run --rm --no-deps -T web flask db downgrade -d "$MIGRATIONS" "$REV1" >"$WORK/downgrade.log" 2>&1 \
  || { cat "$WORK/downgrade.log" >&2; fail "flask db downgrade $REV1"; }
timing "flask db downgrade $REV1 (compose run, v2 image)" $((SECONDS - t))
ok "$(grep -F 'Running downgrade' "$WORK/downgrade.log" | sed 's/^.*\] //')"
[ "$(sql "SELECT version_num FROM alembic_version")" = "$REV1" ] || fail "alembic_version is not $REV1"
[ "$(has_body)" = 0 ] || fail "notes.body still exists"
ok "alembic_version $REV1, notes.body gone, $(sql "SELECT count(*) FROM notes") notes kept"

step "deploy v1 on the downgraded database"
checkout v1
up_ok "v1 (rollback)"
check_web v1 "$REV1"
doc=$(get /notes)
[ "$(json notes.0 <<<"$doc")/$(json notes.1 <<<"$doc")" = "$(json notes.0 <<<"$V1_NOTES")/$(json notes.1 <<<"$V1_NOTES")" ] \
  || fail "v1's notes differ: before $V1_NOTES, now $doc"
{ [ "$(json notes.2.title <<<"$doc")" = third ] && [ "$(json notes.2.body <<<"$doc")" = "" ]; } || fail "the v2 note: $doc"
ok "v1 serves the old notes as before, and v2's note without its body (dropped by the downgrade): $doc"

step "v3-broken: migrates, then crash-loops"
checkout v2
up_ok "v2 (upgrade again)"
check_web v2 "$REV2"
post /notes '{"title": "fourth", "body": "before v3"}' >/dev/null
checkout v3-broken
build v3-broken
up_fails v3-broken
restarting web
logs_show web "KeyError: 'NOTES_TAG_INDEX_DIR'"
[ "$(sql "SELECT version_num FROM alembic_version")" = "$REV3" ] || fail "v3-broken did not migrate to $REV3"
[ "$(sql "SELECT count(*) FROM information_schema.table_constraints WHERE table_name = 'note_tags' AND constraint_type = 'FOREIGN KEY'")" = 1 ] \
  || fail "no note_tags foreign key"
ok "database at $REV3 with table note_tags (foreign key to notes)"
if NOTES_RELEASE=v2 dc run --rm --no-deps -T web flask db upgrade >"$WORK/v2-upgrade.log" 2>&1; then
  fail "the v2 image upgraded a database at $REV3"
fi
grep -F -q "Can't locate revision identified by '$REV3'" "$WORK/v2-upgrade.log" || { cat "$WORK/v2-upgrade.log" >&2; fail "v2's upgrade error"; }
ok "the v2 image cannot start on it: $(grep -F "Can't locate revision" "$WORK/v2-upgrade.log" | tail -n 1)"

step "roll back to v2: downgrade with the v3-broken image (the collection's form), then v2"
dc stop web >/dev/null 2>&1
t=$SECONDS
dc run --rm --no-deps -T --entrypoint flask web db downgrade -d "$MIGRATIONS" "$REV2" >"$WORK/downgrade3.log" 2>&1 \
  || { cat "$WORK/downgrade3.log" >&2; fail "flask db downgrade $REV2"; }
timing "flask db downgrade $REV2 (compose run --entrypoint, v3-broken image)" $((SECONDS - t))
ok "$(grep -F 'Running downgrade' "$WORK/downgrade3.log" | sed 's/^.*\] //')"
[ "$(sql "SELECT count(*) FROM information_schema.tables WHERE table_name = 'note_tags'")" = 0 ] || fail "note_tags still exists"
checkout v2
up_ok "v2 (rollback)"
check_web v2 "$REV2"
doc=$(get /notes)
[ "$(json notes.3.body <<<"$doc")" = "before v3" ] || fail "notes after the v3 rollback: $doc"
ok "v2 serves every note, bodies written since v2 included: $doc"

step "the password appears in no log and no container configuration"
password=$(cat secrets/db_password)
if dc logs --no-color 2>&1 | grep -F -q -- "$password"; then fail "the password is in the logs"; fi
for id in $(dc ps -a -q); do
  if docker inspect "$id" | grep -F -q -- "$password"; then fail "the password is in docker inspect of $id"; fi
done
unset password
ok "not in docker compose logs nor in docker inspect"

step "stop times"
t=$(date +%s.%N)
dc stop web >/dev/null 2>&1
t2=$(date +%s.%N)
dc up -d --wait --wait-timeout "$WAIT_TIMEOUT" >/dev/null 2>&1 || fail "start after stop"
check_web v2 "$REV2"
t3=$(date +%s.%N)
dc down >/dev/null 2>&1
t4=$(date +%s.%N)
stop_s=$("$PY" -c "print(round($t2 - $t, 1))")
down_s=$("$PY" -c "print(round($t4 - $t3, 1))")
ok "docker compose stop web: $stop_s s, down: $down_s s (2 containers)"
"$PY" -c "import sys; sys.exit(0 if $stop_s < 5 and $down_s < 8 else 1)" || fail "stopping is slow (stop web $stop_s s, down $down_s s)"
