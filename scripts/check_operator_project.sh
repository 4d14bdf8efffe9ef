#!/usr/bin/env bash
# Offline check of the operator project (examples/operator) and of the collection's own example inventories, as an
# operator would use them - no network, no Docker. Exits non-zero on the first failed check.
#   1. a copy of examples/operator in a temporary directory, with this checkout's collection and the venv's
#      community.* / ansible.posix visible in its collections/ directory (links), its own ansible.cfg in charge;
#   2. a wrapper per collection playbook, each importing its namesake by FQCN; ansible-playbook --syntax-check of every
#      wrapper with each inventory;
#   3. ansible-inventory --list of inventories/prod and inventories/staging (the copy's and the checkout's): every
#      aiwfe_* variable the collection's roles and playbooks read - found in the checkout (Jinja of roles/*/defaults,
#      vars and tasks, playbooks/*.yml and playbooks/vars/*.yml), not listed here - is defined for every host, and
#      ansible_become is true;
#   4. ansible-lint (production profile) in the copy;
#   5. the credentials role for real against localhost (a throwaway project; its directory on tmpfs): the password file
#      is there during the play (0600, directory 0700, tmpfs) and a module reading it with the collection's own reader
#      gets the password; it is gone afterwards - after a normal run, a --check run and a run whose role fails; a
#      directory that is not on tmpfs is refused; without a password the inventory's file is used as it is; the
#      password appears nowhere in the output of ansible-playbook -v.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
VENV="$ROOT/.venv"
[ -x "$VENV/bin/ansible-playbook" ] || die "no $VENV: run make setup first"
export PATH="$VENV/bin:$PATH"
# As the operator runs it: the project's ansible.cfg and nothing of the caller's Ansible environment (scripts/test.sh
# exports its own config, collections path and callbacks).
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^ANSIBLE_' || true)
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0

TMP=$(mktemp -d "${TMPDIR:-/tmp}/aiwfe-operator-check.XXXXXX")
SHM=""
cleanup() {
  rm -rf -- "$TMP"
  [ -z "$SHM" ] || rm -rf -- "$SHM"
}
trap cleanup EXIT
PROJ="$TMP/operator"
FAILS=0
ok() { log "ok: $*"; }
bad() { log "FAILED: $*"; FAILS=$((FAILS + 1)); }

# --- 1. the copy -------------------------------------------------------------------------------------------------------
cp -a "$ROOT/examples/operator/." "$PROJ/"
COLL="$PROJ/collections/ansible_collections"
mkdir -p "$COLL/aiwfe"
ln -s "$ROOT" "$COLL/aiwfe/rollback"
for ns in community ansible awx; do
  [ -d "$VENV/collections/ansible_collections/$ns" ] || die "no $ns collections in $VENV/collections: run make setup"
  ln -s "$VENV/collections/ansible_collections/$ns" "$COLL/$ns"
done
cd "$PROJ"
if ansible-config dump --only-changed 2>/dev/null | grep -q "^DEFAULT_HOST_LIST.*inventories/prod"; then
  ok "the copy's ansible.cfg is in charge (inventory inventories/prod)"
else
  bad "ansible.cfg of the copy is not used, or its inventory is not inventories/prod"
fi

# --- 2. wrappers and syntax --------------------------------------------------------------------------------------------
mapfile -t PLAYBOOKS < <(find "$ROOT/playbooks" -maxdepth 1 -name '*.yml' -printf '%f\n' | sort)
for pb in "${PLAYBOOKS[@]}"; do
  if [ ! -f "$pb" ]; then
    bad "no wrapper $pb for playbooks/$pb"
  elif ! grep -qx "  ansible.builtin.import_playbook: aiwfe.rollback.${pb%.yml}" "$pb"; then
    bad "$pb does not import aiwfe.rollback.${pb%.yml}"
  fi
done
for pb in *.yml; do
  [ "$pb" = execution-environment.yml ] && continue  # ansible-builder's definition (section 6)
  [ -f "$ROOT/playbooks/$pb" ] || bad "wrapper $pb has no collection playbook playbooks/$pb"
done
ok "one wrapper per collection playbook (${#PLAYBOOKS[@]})"
for inv in prod staging; do
  if out=$(ansible-playbook --syntax-check -i "inventories/$inv" "${PLAYBOOKS[@]}" 2>&1); then
    ok "syntax of ${#PLAYBOOKS[@]} wrappers with inventories/$inv"
  else
    printf '%s\n' "$out" >&2
    bad "syntax check with inventories/$inv"
  fi
done

# --- 3. inventories complete -------------------------------------------------------------------------------------------
# The aiwfe_* variables the collection reads: every Jinja expression of its roles and playbooks (conditions too),
# minus the ones playbooks/vars/stack.yml defines itself.
"$VENV/bin/python" - "$ROOT" > "$TMP/required.txt" <<'PY'
import glob, os, sys
import jinja2, jinja2.meta, yaml

root = sys.argv[1]
files = sorted(set(
    glob.glob(f"{root}/roles/*/defaults/main.yml") + glob.glob(f"{root}/roles/*/vars/*.yml")
    + glob.glob(f"{root}/roles/*/tasks/**/*.yml", recursive=True)
    + glob.glob(f"{root}/playbooks/*.yml") + glob.glob(f"{root}/playbooks/vars/*.yml")))
conditions = {"when", "that", "changed_when", "failed_when", "until"}
env = jinja2.Environment()
found, defined = set(), set()


def names(text):
    try:
        return {n for n in jinja2.meta.find_undeclared_variables(env.parse(text)) if n.startswith("aiwfe_")}
    except jinja2.TemplateSyntaxError:
        return set()


def walk(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            walk(v, k)
    elif isinstance(node, list):
        for v in node:
            walk(v, key)
    elif isinstance(node, str):
        found.update(names(node))
        if key in conditions and "{{" not in node:
            found.update(names("{{ (" + node + ") }}"))


for path in files:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    walk(data)
    if path.startswith(f"{root}/playbooks/vars/") and isinstance(data, dict):
        defined.update(data)
print("\n".join(sorted(found - defined)))
PY
[ -s "$TMP/required.txt" ] || die "found no aiwfe_* variable in the checkout: the derivation is broken"
log "aiwfe_* variables the collection reads: $(wc -l < "$TMP/required.txt") ($(paste -sd' ' "$TMP/required.txt"))"

check_inventory() {  # label, directory to run in, inventory, group
  local label=$1 dir=$2 inv=$3 group=$4 json="$TMP/inventory.json"
  if ! (cd "$dir" && ansible-inventory -i "$inv" --list) > "$json" 2> "$TMP/inventory.err"; then
    cat "$TMP/inventory.err" >&2
    bad "$label: ansible-inventory --list"
    return
  fi
  if "$VENV/bin/python" - "$json" "$group" "$TMP/required.txt" <<'PY'; then
import json, sys

inventory = json.load(open(sys.argv[1]))
group = sys.argv[2]
required = open(sys.argv[3]).read().split()
hosts = inventory.get(group, {}).get("hosts", [])
problems = [] if hosts else [f"no host in group {group}"]
for host in hosts:
    hostvars = inventory["_meta"]["hostvars"].get(host, {})
    missing = [name for name in required if name not in hostvars]
    if missing:
        problems.append(f"{host}: not defined: {', '.join(missing)}")
    if hostvars.get("ansible_become") is not True:
        problems.append(f"{host}: ansible_become is not true")
for problem in problems:
    print("  " + problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    ok "$label: every aiwfe_* variable defined for every host of $group, ansible_become true"
  else
    bad "$label: incomplete"
  fi
}
for inv in prod staging; do
  check_inventory "operator project inventories/$inv" "$PROJ" "inventories/$inv" "$inv"
  ANSIBLE_CONFIG="$ROOT/ansible.cfg" check_inventory "collection inventories/$inv" "$ROOT" "inventories/$inv" "$inv"
done

# --- 4. ansible-lint ---------------------------------------------------------------------------------------------------
if out=$(ansible-lint --offline --profile production 2>&1); then
  ok "ansible-lint (production profile) in the operator project"
else
  printf '%s\n' "$out" >&2
  bad "ansible-lint in the operator project"
fi

# --- 5. the credentials role for real ----------------------------------------------------------------------------------
CRED="$TMP/credentials"
mkdir -p "$CRED/library" "$CRED/roles/probe/tasks"
PROJECT="aiwfe_check_credentials_$$"
# The role's default directory where it can be used (root, /run on tmpfs), else a private one on /dev/shm.
if [ "$(id -u)" = 0 ] && [ "$(stat -f -c %T /run 2>/dev/null)" = tmpfs ]; then
  CRED_DIR="/run/aiwfe-rollback/$PROJECT"
  DIR_ARGS=()
else
  SHM=$(mktemp -d /dev/shm/aiwfe-operator-check.XXXXXX)
  CRED_DIR="$SHM/$PROJECT"
  DIR_ARGS=(-e "credentials_dir=$CRED_DIR")
fi
cat > "$CRED/ansible.cfg" <<EOF
[defaults]
collections_path = $PROJ/collections
stdout_callback = ansible.builtin.default
retry_files_enabled = false
EOF
# A module that reads the password file exactly as the collection's modules do (module_utils/_common.py) and says
# whether it holds the password (by its sha256) - never the password.
cat > "$CRED/library/aiwfe_password_probe.py" <<'PY'
#!/usr/bin/python
from __future__ import annotations

import hashlib

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import read_password_file


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "path", "required": True},
                                          "sha256": {"type": "str", "required": True}}, supports_check_mode=True)
    password = read_password_file(module.params["path"]) or ""
    module.exit_json(changed=False, matches=hashlib.sha256(password.encode()).hexdigest() == module.params["sha256"])


if __name__ == "__main__":
    main()
PY
cat > "$CRED/roles/probe/tasks/main.yml" <<'EOF'
---
- name: Look at the password file and its directory
  ansible.builtin.stat:
    path: "{{ item }}"
    get_checksum: false
  loop: ["{{ aiwfe_db_password_file }}", "{{ aiwfe_db_password_file | dirname }}"]
  register: probe_stat

- name: Read the file system type of the directory
  ansible.builtin.command:
    argv: [stat, --file-system, --format=%T, "{{ aiwfe_db_password_file | dirname }}"]
  register: probe_fs
  changed_when: false
  check_mode: false

- name: Read the file as the collection's modules do
  aiwfe_password_probe:
    path: "{{ aiwfe_db_password_file }}"
    sha256: "{{ probe_sha256 }}"
  register: probe_read

- name: The file is there, private, on tmpfs, and holds the password
  ansible.builtin.assert:
    that:
      - probe_stat.results[0].stat.exists
      - not probe_written | bool or probe_stat.results[0].stat.mode == '0600'
      - not probe_written | bool or probe_stat.results[1].stat.mode == '0700'
      - not probe_written | bool or probe_fs.stdout in ['tmpfs', 'ramfs']
      - probe_read.matches
    quiet: true

- name: Say where the file is
  ansible.builtin.debug:
    msg: "PROBE password_file={{ aiwfe_db_password_file }} mode={{ probe_stat.results[0].stat.mode }} read=ok"

- name: Fail half way when asked to
  ansible.builtin.fail:
    msg: the probe fails on purpose
  when: probe_fail | bool
EOF
cat > "$CRED/play.yml" <<'EOF'
---
- name: The database password through aiwfe.rollback.credentials
  hosts: all
  gather_facts: false
  vars:
    probe_fail: false
    probe_written: true
  roles:
    - role: aiwfe.rollback.credentials
      credentials_run_role: probe
EOF
TOKEN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
PASSWORD="aiwfe pw $TOKEN-\"q'"
SHA=$(printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1)
printf 'check-vault-%s\n' "$$" > "$CRED/vault-pass"
chmod 0600 "$CRED/vault-pass"
# The vaulted way (the operator project's vault.yml) and the job runner's way (an extra var from a file, as AWX passes
# its credentials' extra vars).
printf '%s' "$PASSWORD" | ansible-vault encrypt_string --vault-password-file "$CRED/vault-pass" --stdin-name \
  aiwfe_db_password > "$CRED/vaulted.yml" 2> /dev/null
"$VENV/bin/python" -c 'import json, sys; print(json.dumps({"aiwfe_db_password": sys.argv[1]}))' "$PASSWORD" \
  > "$CRED/extra_vars.json"
grep -qF -e "$PASSWORD" -e "$TOKEN" "$CRED/vaulted.yml" && die "ansible-vault left the password readable"
COMMON=(-v -i "localhost," -c local -e "ansible_python_interpreter=$VENV/bin/python" -e "aiwfe_project_name=$PROJECT"
        -e "probe_sha256=$SHA" "${DIR_ARGS[@]}")

# A run's exit code and a text its output must hold: false (and reported, with the log's tail) when either is wrong.
rc_and_text() {  # label, log, rc, expected rc, expected text
  local label=$1 log=$2 rc=$3 want_rc=$4 want_text=$5
  if [ "$rc" != "$want_rc" ]; then
    tail -n 40 "$log" >&2
    bad "$label: exited $rc, not $want_rc"
    return 1
  elif ! grep -qF -- "$want_text" "$log"; then
    tail -n 40 "$log" >&2
    bad "$label: no '$want_text' in the output"
    return 1
  fi
}

run_credentials() {  # label, expected rc, expected text in the output, file kept (yes/no), ansible-playbook args...
  local label=$1 want_rc=$2 want_text=$3 kept=$4 rc=0 file
  shift 4
  (cd "$CRED" && ansible-playbook "${COMMON[@]}" "$@" play.yml) > "$TMP/run.log" 2>&1 || rc=$?
  file=$(sed -n 's/.*PROBE password_file=\([^ ]*\) .*/\1/p' "$TMP/run.log" | head -n1)
  if ! rc_and_text "credentials, $label" "$TMP/run.log" "$rc" "$want_rc" "$want_text"; then
    :
  elif grep -qF -e "$PASSWORD" -e "$TOKEN" "$TMP/run.log"; then
    bad "credentials, $label: THE PASSWORD IS IN THE OUTPUT of ansible-playbook -v"
  elif [ -n "$file" ] && [ "$kept" = no ] && [ -e "$file" ]; then
    bad "credentials, $label: $file is still there after the play"
  elif [ -n "$file" ] && [ "$kept" = yes ] && [ ! -e "$file" ]; then
    bad "credentials, $label: the inventory's own $file was removed"
  elif [ -e "$CRED_DIR" ] && [ -n "$(ls -A "$CRED_DIR")" ]; then
    bad "credentials, $label: $CRED_DIR is not empty after the play"
  else
    ok "credentials, $label${file:+ ($file during the play, $([ "$kept" = yes ] && echo kept || echo gone) after)}"
  fi
}
run_credentials "vaulted password" 0 "mode=0600 read=ok" no \
  --vault-password-file "$CRED/vault-pass" -e "@$CRED/vaulted.yml"
run_credentials "vaulted password, --check" 0 "mode=0600 read=ok" no \
  --check --vault-password-file "$CRED/vault-pass" -e "@$CRED/vaulted.yml"
run_credentials "extra var (a job runner's credential), the role fails half way" 2 "the probe fails on purpose" no \
  -e "@$CRED/extra_vars.json" -e probe_fail=true
printf '%s\n' "$PASSWORD" > "$TMP/given_password"
chmod 0600 "$TMP/given_password"
run_credentials "no password: the inventory's aiwfe_db_password_file as it is" 0 "password_file=$TMP/given_password" yes \
  -e "aiwfe_db_password_file=$TMP/given_password" -e probe_written=false
if [ "$(stat -f -c %T "$TMP")" != tmpfs ] && [ "$(stat -f -c %T "$TMP")" != ramfs ]; then
  run_credentials "a directory on a disk is refused" 2 "not on tmpfs" no \
    -e "@$CRED/extra_vars.json" -e "credentials_dir=$TMP/on-disk/$PROJECT"
  [ -z "$(ls -A "$TMP/on-disk/$PROJECT" 2>/dev/null)" ] || bad "credentials: a file was left in $TMP/on-disk/$PROJECT"
else
  log "skipped: the refusal of a directory on a disk ($TMP is on tmpfs)"
fi
run_credentials "both a password and an extra-var file are refused" 2 "give one of them" no \
  -e "@$CRED/extra_vars.json" -e "aiwfe_db_password_file=$TMP/given_password"
[ ! -e "$CRED_DIR" ] || bad "credentials: $CRED_DIR was not removed"

# --- 6. the AWX / AAP layout (awx/, execution-environment.yml; docs/awx.md) ---------------------------------------------
# 6a. The survey specs follow AWX's rules and the project's (tests/tools/awx_survey.py; its unit test has each rule).
if out=$("$VENV/bin/python" "$ROOT/tests/tools/awx_survey.py" awx/surveys/*.json 2>&1); then
  ok "AWX survey specs: $out"
else
  printf '%s\n' "$out" >&2
  bad "AWX survey specs"
fi
# 6b. Syntax of the AWX wrappers and of configure_awx.yml (awx.awx).
mapfile -t AWX_PLAYBOOKS < <(find awx -maxdepth 1 -name '*.yml' ! -name requirements.yml | sort)
if out=$(ansible-playbook --syntax-check -i inventories/prod "${AWX_PLAYBOOKS[@]}" 2>&1); then
  ok "syntax of ${#AWX_PLAYBOOKS[@]} AWX playbooks (${AWX_PLAYBOOKS[*]})"
else
  printf '%s\n' "$out" >&2
  bad "syntax check of the AWX playbooks"
fi
# 6c. The wrappers' first play for real, with extra vars as a survey sends them (--tags survey_check: only the checks
# run, no host is contacted): the survey's defaults go through as false; a destructive "yes" without the stack's name
# typed, an answer that is not yes/no, and a collection opt-in given directly all stop the job in that first play.
survey_case() {  # label, wrapper, expected rc, expected text, extra vars (JSON)
  local label=$1 pb=$2 want_rc=$3 want_text=$4 vars=$5 rc=0 plays
  ANSIBLE_CALLBACK_RESULT_FORMAT=json ansible-playbook "awx/$pb" -l prod --tags survey_check -e "$vars" \
    > "$TMP/survey.log" 2>&1 || rc=$?
  plays=$(grep -c '^PLAY \[' "$TMP/survey.log" || true)
  if ! rc_and_text "AWX $pb, $label" "$TMP/survey.log" "$rc" "$want_rc" "$want_text"; then
    :
  elif [ "$want_rc" != 0 ] && [ "$plays" != 1 ]; then
    bad "AWX $pb, $label: a play after the survey check started ($plays plays)"
  elif grep -q 'UNREACHABLE' "$TMP/survey.log"; then
    bad "AWX $pb, $label: a host was contacted"
  else
    ok "AWX $pb, $label: rc $rc, '$want_text'"
  fi
}
survey_case "the survey's defaults" awx_rollback_full.yml 0 \
  '{\"survey_stop_first\": false, \"survey_optin_system_prune\": false, \"survey_optin_volume_prune\": false}' \
  '{"aiwfe_rollback_release": "previous", "survey_stop_first": "no", "survey_optin_system_prune": "no", "survey_optin_volume_prune": "no"}'
survey_case "volume prune yes, stack name typed" awx_rollback_full.yml 0 '\"survey_optin_volume_prune\": true' \
  '{"survey_optin_volume_prune": "yes", "survey_confirm_stack": "ai_workflow_engine"}'
survey_case "volume prune yes, no name typed" awx_rollback_full.yml 2 "type the stack's name (ai_workflow_engine" \
  '{"survey_optin_volume_prune": "yes"}'
survey_case "system prune yes, another name typed" awx_rollback_full.yml 2 'is not it. Nothing ran.' \
  '{"survey_optin_system_prune": "yes", "survey_confirm_stack": "ai_workflow"}'
survey_case "an answer that is not yes/no" awx_rollback_full.yml 2 'survey_optin_volume_prune is \"true\"' \
  '{"survey_optin_volume_prune": "true"}'
survey_case "the collection's opt-in given directly" awx_rollback_full.yml 2 'full_rollback_volume_prune given directly' \
  '{"full_rollback_volume_prune": true}'
survey_case "a release that is not one name" awx_rollback_full.yml 2 'answer previous, a release label' \
  '{"aiwfe_rollback_release": "v1.2.0; rm -rf /"}'
survey_case "services as the multiselect sends them" awx_rollback_quick.yml 0 'nothing destructive asked for' \
  '{"aiwfe_rollback_release": "v1.2.0", "aiwfe_rollback_services": ["api", "worker"]}'
survey_case "services as a string" awx_rollback_quick.yml 2 'a list of compose service names' \
  '{"aiwfe_rollback_services": "api"}'
survey_case "strategy restore, no name typed" awx_rollback_migration.yml 2 'the strategy restore was asked for' \
  '{"aiwfe_migration_strategy": "restore"}'
survey_case "strategy auto" awx_rollback_migration.yml 0 'nothing destructive asked for' \
  '{"aiwfe_migration_strategy": "auto"}'
survey_case "clear certificates yes, no name typed" awx_rollback_tls.yml 2 "clearing Caddy's certificate data" \
  '{"survey_optin_clear_certificates": "yes"}'
survey_case "clear certificates no" awx_rollback_tls.yml 0 '\"survey_optin_clear_certificates\": false' \
  '{"survey_optin_clear_certificates": "no"}'
survey_case "restore without the name typed" awx_restore.yml 2 'a restore replaces live data (database, config)' \
  '{"restore_set": "latest", "restore_parts": ["database", "config"]}'
survey_case "restore with the name typed" awx_restore.yml 0 'destructive step confirmed' \
  '{"restore_set": "latest", "restore_parts": ["volumes"], "survey_restore_volumes": "a_vol\n b_vol\n", "survey_confirm_stack": "ai_workflow_engine"}'
survey_case "break the lock without the name typed" awx_unlock.yml 2 'breaking the lock with token 0123abcd' \
  '{"aiwfe_lock_break": "0123abcd"}'
survey_case "only show the lock" awx_unlock.yml 0 'nothing destructive asked for' '{"aiwfe_lock_break": ""}'
# 6d. configure_awx.yml against a port where no AWX answers: every awx.awx task gets past its module's own argument
# validation and fails only at connecting, and neither secret it sends is in the output. Two runs of a copy whose play
# has ignore_errors (so every task runs): as it is - no secret in the output, the credentials' results censored - and
# with no_log off, so the credential tasks' errors can be read too.
AWX_SECRET="aiwfe-awx-probe-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\n%s-key\n-----END OPENSSH PRIVATE KEY-----\n' "$AWX_SECRET" > "$TMP/probe_key"
configure_probe() {  # label, sed expression turning no_log off ('' - kept)
  local label=$1 no_log_off=$2 out
  sed -e 's/^  gather_facts: false$/  gather_facts: false\n  ignore_errors: true/' ${no_log_off:+-e "$no_log_off"} \
    awx/configure_awx.yml > awx/configure_probe.yml
  if [ "$(grep -c '^  ignore_errors: true$' awx/configure_probe.yml)" != 1 ]; then
    bad "configure_awx.yml ($label): could not make the probe copy (its play's gather_facts line changed?)"
    return
  fi
  CONTROLLER_HOST=http://127.0.0.1:9 AIWFE_DB_PASSWORD="$AWX_SECRET" AIWFE_SSH_KEY_FILE="$TMP/probe_key" \
    ANSIBLE_STDOUT_CALLBACK=ansible.builtin.json ansible-playbook awx/configure_probe.yml \
    > "$TMP/configure.json" 2> "$TMP/configure.err" || true
  rm -f awx/configure_probe.yml
  if [ -z "$no_log_off" ] && grep -qF "$AWX_SECRET" "$TMP/configure.json" "$TMP/configure.err"; then
    bad "configure_awx.yml ($label): A SECRET IS IN THE OUTPUT"
  elif out=$("$VENV/bin/python" - "$TMP/configure.json" "${no_log_off:+read}" <<'PY'
import json, sys

calls, censored, problems = 0, 0, []
for task in json.load(open(sys.argv[1]))["plays"][0]["tasks"]:
    name = task["task"]["name"]
    result = task["hosts"]["localhost"]
    for item in result.get("results") or [result]:
        msg = str(item.get("msg", ""))
        if name == "The secrets to send are there":
            if item.get("failed"):
                problems.append(f"{name}: {msg}")
        elif item.get("failed") and "censored" in item and not sys.argv[2]:
            censored += 1
        elif not item.get("failed") or "trying to connect to http://127.0.0.1:9" not in msg:
            problems.append(f"{name}: {item.get('censored') or msg[:300]}")
        else:
            calls += 1
print("\n".join(problems) if problems else f"{calls} awx.awx calls stopped only at connecting"
      + (f", {censored} with no_log (results censored)" if censored else ""))
sys.exit(1 if problems or not calls else 0)
PY
  ); then
    ok "configure_awx.yml ($label): $out"
  else
    printf '%s\n' "$out" >&2
    cat "$TMP/configure.err" >&2
    bad "configure_awx.yml ($label) against no AWX"
  fi
}
configure_probe "as it is, no secret in the output" ""
configure_probe "no_log off, every task's arguments accepted" 's/^      no_log: true$/      no_log: false/'
# 6e. The execution environment definition (its schema: ansible-lint, section 4): ansible-builder create writes the
# build context and builds nothing (no container engine or registry needed).
if ! command -v ansible-builder >/dev/null 2>&1; then
  bad "ansible-builder is not installed (requirements/venv.txt): run make setup"
else
  if out=$(ansible-builder create -f execution-environment.yml --context "$TMP/ee-context" 2>&1) \
     && grep -q 'docker compose version' "$TMP/ee-context/Containerfile" "$TMP/ee-context/Dockerfile" 2>/dev/null; then
    ok "ansible-builder create: build context for execution-environment.yml written"
  else
    printf '%s\n' "$out" >&2
    bad "ansible-builder create -f execution-environment.yml"
  fi
fi

if [ "$FAILS" -gt 0 ]; then
  die "$FAILS check(s) of the operator project failed"
fi
log "the operator project passed every check"
