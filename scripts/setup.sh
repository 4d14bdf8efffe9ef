#!/usr/bin/env bash
# Idempotent set-up of everything the collection's demo and tests need on this machine:
#   - a running Docker engine with the Compose v2 plugin (installed on Debian as root),
#   - host tools (debootstrap, zstd, pigz, shellcheck, git, rsync),
#   - .venv/ with the pinned tool chain from requirements/venv.txt,
#   - community.docker, community.postgresql (and what they need) on the collections path,
#     taken from the `ansible` wheel on PyPI (no Galaxy),
#   - this collection resolvable by its FQCN (symlink in .venv/collections),
#   - ansible-test working offline (a local get-pip stand-in),
#   - the local base image local/debian:bookworm (pulled, or made with debootstrap).
# Every step checks first and does nothing when its result is already there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ANSIBLE_BUNDLE_VERSION=12.3.0
VENV="$ROOT/.venv"
COLL="$VENV/collections/ansible_collections"
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"

# pip chatter about unreachable local indexes is noise; errors still show (pipefail keeps rc).
quiet_pip() { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }

is_debian_root() {
  [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null
}

APT_UPDATED=""
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  is_debian_root || die "missing packages ${missing[*]}: install them (this script installs them itself only on Debian as root)"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Debian mirror this machine's apt already uses (so no host name is written here).
debian_mirror() {
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt/sources.list*: add one and run again"
  echo "${uri%/}"
}

step_host_tools() {
  if is_debian_root; then
    apt_install debootstrap zstd pigz shellcheck git rsync curl ca-certificates python3-venv
  else
    for t in git rsync curl zstd; do
      command -v "$t" >/dev/null || die "missing '$t': install it and run 'make setup' again"
    done
  fi
}

step_docker_engine() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null; then
    is_debian_root || die "no Docker engine is running: install Docker Engine with the Compose v2 plugin (https://docs.docker.com/engine/install/) and start it, then run 'make setup' again"
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "the Docker engine is installed but not running: start it (sudo systemctl start docker) and run 'make setup' again"
    log "starting dockerd"
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      systemctl start docker || true
    fi
    if ! docker info >/dev/null 2>&1; then
      setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    fi
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || die "dockerd did not start: see /var/log/dockerd.log"
  fi
}

step_compose_plugin() {
  if docker compose version >/dev/null 2>&1; then return 0; fi
  is_debian_root || die "the Docker Compose v2 plugin is missing: install it (package docker-compose-plugin) and run 'make setup' again"
  # Debian 12 only has Compose v1; Debian 13 ships Compose v2 as a static binary.
  # Fetch that one package with a private apt state, without touching the system's sources.
  local d="$CACHE/apt-trixie" mirror
  mirror=$(debian_mirror)
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/pkg"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$d/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
  log "fetching the Compose v2 plugin (Debian trixie package docker-compose)"
  apt-get "${opts[@]}" update -qq >/dev/null
  (cd "$d/pkg" && apt-get "${opts[@]}" download docker-compose >/dev/null)
  local debs=("$d"/pkg/docker-compose_*.deb) deb
  deb=${debs[0]}
  rm -rf "$d/x" && dpkg-deb -x "$deb" "$d/x"
  install -D -m 0755 "$d/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/libexec/docker/cli-plugins/docker-compose
  docker compose version >/dev/null 2>&1 || die "docker compose still does not answer after installing the plugin"
}

step_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum requirements/venv.txt | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 and run again"
  python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' \
    || die "Python >= 3.11 is needed for ansible-core 2.19 (found $(python3 --version))"
  log "creating .venv with requirements/venv.txt"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet_pip
  "$VENV/bin/python" -m pip install -q -r requirements/venv.txt 2>&1 | quiet_pip
  echo "$want" > "$stamp"
}

step_collections() {
  local stamp="$COLL/.bundle-$ANSIBLE_BUNDLE_VERSION"
  if [ ! -f "$stamp" ]; then
    log "extracting community.docker, community.postgresql, ansible.posix from ansible==$ANSIBLE_BUNDLE_VERSION"
    local dl="$CACHE/wheels"
    mkdir -p "$dl" "$COLL"
    ls "$dl"/ansible-"$ANSIBLE_BUNDLE_VERSION"-*.whl >/dev/null 2>&1 \
      || "$VENV/bin/python" -m pip download -q --no-deps "ansible==$ANSIBLE_BUNDLE_VERSION" -d "$dl" 2>&1 | quiet_pip
    "$VENV/bin/python" - "$dl"/ansible-"$ANSIBLE_BUNDLE_VERSION"-*.whl "$COLL" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
keep = ("ansible_collections/community/docker/",
        "ansible_collections/community/postgresql/",
        "ansible_collections/community/library_inventory_filtering_v1/",
        "ansible_collections/ansible/posix/")
root = os.path.dirname(dest)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(keep) and not name.endswith("/"):
            z.extract(name, root)
PY
    touch "$stamp"
  fi
  # The collection itself, resolvable by FQCN from the repository root.
  mkdir -p "$COLL/aiwfe"
  [ -L "$COLL/aiwfe/rollback" ] || ln -sfn "$ROOT" "$COLL/aiwfe/rollback"
}

# ansible-test bootstraps pip in its venvs with a get-pip script from a host that is not
# reachable here; give it a local stand-in that runs pip from a downloaded wheel.
step_ansible_test_offline() {
  local pipver cache wheel_dir
  # The pip version ansible-test pins for its venvs (default_packages in python_requirements.py).
  pipver=$(sed -n "s/^ *pip='\([0-9.]*\)',\?$/\1/p" \
    "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n1)
  [ -n "$pipver" ] || die "cannot find the pip version ansible-test wants"
  cache="$HOME/.ansible/test/cache"
  local f="$cache/get_pip_${pipver//./_}.py"
  wheel_dir="$CACHE/pip-wheel"
  if [ -f "$f" ] && ls "$wheel_dir"/pip-"$pipver"-*.whl >/dev/null 2>&1; then return 0; fi
  mkdir -p "$cache" "$wheel_dir"
  ls "$wheel_dir"/pip-"$pipver"-*.whl >/dev/null 2>&1 \
    || "$VENV/bin/python" -m pip download -q --no-deps "pip==$pipver" -d "$wheel_dir" 2>&1 | quiet_pip
  local whls=("$wheel_dir"/pip-"$pipver"-*.whl) whl
  whl=${whls[0]}
  cat > "$f" <<PY
# Offline stand-in for get-pip.py, written by aiwfe.rollback scripts/setup.sh.
import runpy
import sys

sys.path.insert(0, "$whl")
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = [sys.argv[0], "install", "--find-links", "$wheel_dir"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
}

step_base_image() {
  local img=local/debian:bookworm
  docker image inspect "$img" >/dev/null 2>&1 && return 0
  if timeout 20 docker pull -q debian:bookworm >/dev/null 2>&1; then
    docker tag debian:bookworm "$img"
    return 0
  fi
  is_debian_root || die "cannot pull debian:bookworm and cannot build it here: load a Debian 12 image as $img and run again"
  log "building $img with debootstrap (no registry reachable)"
  local dir="$CACHE/rootfs-bookworm"
  rm -rf "$dir"
  debootstrap --variant=minbase bookworm "$dir" "$(debian_mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see $CACHE/debootstrap.log"
  # Same sources as the host so builds inside can install packages.
  echo "deb $(debian_mirror) bookworm main" > "$dir/etc/apt/sources.list"
  tar -C "$dir" -c . | docker import - "$img" >/dev/null
  rm -rf "$dir"
}

main() {
  step_host_tools
  step_docker_engine
  step_compose_plugin
  step_venv
  step_collections
  step_ansible_test_offline
  step_base_image
  log "setup ok: $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), $("$VENV/bin/ansible" --version | head -n1)"
}

main "$@"
