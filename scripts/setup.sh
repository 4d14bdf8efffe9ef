#!/usr/bin/env bash
# Idempotent set-up of everything the collection's demo and tests need on this machine:
#   - a running Docker engine with the Compose v2 plugin (on Debian as root: Engine 26.1.5 from Debian trixie's
#     packages in place of Debian 12's 20.10, which stays installed for the 20.10 test scenario; docs/engines.md),
#   - host tools (debootstrap, zstd, pigz, shellcheck, git, rsync),
#   - Debian's openssh-server for the multi-host tests (scripts/fleet_hosts.sh; its own sshd service left off),
#   - .venv/ with the pinned tool chain from requirements/venv.txt,
#   - community.docker, community.postgresql (and what they need) and awx.awx (the operator project's
#     configure_awx.yml) on the collections path, taken from the `ansible` wheel on PyPI (no Galaxy),
#   - this collection resolvable by its FQCN (symlink in .venv/collections),
#   - ansible-test working offline (a local get-pip stand-in),
#   - the local base image local/debian:bookworm (pulled, or made with debootstrap).
# Every step checks first and does nothing when its result is already there.
# Usage: setup.sh [STEP...]   (no step: all of them; e.g. `setup.sh docker_engine`)
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

# /usr/sbin/sshd for scripts/fleet_hosts.sh, which runs one sshd per network namespace with its own config. The
# package's own ssh service must not start (or stay enabled): policy-rc.d refuses it during the install.
step_ssh_server() {
  [ -x /usr/sbin/sshd ] && return 0
  is_debian_root || die "/usr/sbin/sshd is missing: install openssh-server (its service need not run) and run again"
  local policy=/usr/sbin/policy-rc.d made=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by aiwfe.rollback scripts/setup.sh for one apt-get run\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    made=1
  fi
  apt_install openssh-server || { [ -z "$made" ] || rm -f "$policy"; die "installing openssh-server failed"; }
  [ -z "$made" ] || rm -f "$policy"
  if [ -d /run/systemd/system ]; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
  [ -x /usr/sbin/sshd ] || die "openssh-server is installed but /usr/sbin/sshd is missing"
}

# The machine's Docker engine. On Debian as root: Docker Engine 26.1.5 (Debian trixie's docker.io and containerd,
# Debian 12's runc), replacing Debian 12's own 20.10 (docs/engines.md). The AIWFE_DOCKER_* variables exist to try
# the switch beside a running engine (another socket, data root and network namespace); the defaults are Docker's.
DOCKER_SOCK=${AIWFE_DOCKER_SOCKET:-/var/run/docker.sock}
DOCKER_DATA_ROOT=${AIWFE_DOCKER_DATA_ROOT:-/var/lib/docker}
DOCKER_EXEC_ROOT=${AIWFE_DOCKER_EXEC_ROOT:-/var/run/docker}
DOCKER_PIDFILE=${AIWFE_DOCKER_PIDFILE:-/var/run/docker.pid}
DOCKER_LOG=${AIWFE_DOCKER_LOG:-/var/log/dockerd.log}
DOCKER_NETNS=${AIWFE_DOCKER_NETNS:-}
ENGINE_DIR=${AIWFE_ENGINE_DIR:-/usr/local/lib/aiwfe-docker-26}
# Engine 25 is the first with healthcheck start_interval, which the reference stack uses.
ENGINE_MIN_MAJOR=25

# Downloads Debian 13 ("trixie") packages with an apt state of its own (sources list, lists and cache under
# .cache/apt-trixie): the system's apt sources and state are not touched. The .debs land in $TRIXIE_OUT.
TRIXIE_UPDATED=""
TRIXIE_OUT=""
trixie_download() {
  local d="$CACHE/apt-trixie"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  local opts=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root)
  if [ -z "$TRIXIE_UPDATED" ]; then
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" > "$d/sources.list"
    apt-get "${opts[@]}" update -qq >/dev/null
    TRIXIE_UPDATED=1
  fi
  TRIXIE_OUT=$(mktemp -d "$d/pkg.XXXXXX")
  (cd "$TRIXIE_OUT" && apt-get "${opts[@]}" download "$@" >/dev/null)
}

# Is the machine's engine the systemd unit docker.service (a Debian machine booted with systemd)?
engine_under_systemd() {
  [ "$DOCKER_SOCK" = /var/run/docker.sock ] && [ -z "$DOCKER_NETNS" ] && [ -d /run/systemd/system ] \
    && systemctl cat docker.service >/dev/null 2>&1
}

# Engine 26 into $ENGINE_DIR/bin: dockerd and docker-proxy (trixie's docker.io), containerd and its runc shim
# (trixie's containerd; they need glibc 2.34, Debian 12 has 2.36), with links to Debian 12's runc 1.1.5 (trixie's
# needs glibc 2.38) and tini (docker-init). dockerd finds them all on its PATH, which starts with that directory.
step_engine_fetch() {
  local bin="$ENGINE_DIR/bin" have=""
  [ -x "$bin/dockerd" ] && have=$("$bin/dockerd" --version 2>/dev/null | awk '{print $3}' | tr -d ,)
  if [ "$(engine_major "$have")" -ge "$ENGINE_MIN_MAJOR" ] && [ -x "$bin/containerd" ] \
     && [ -x "$bin/containerd-shim-runc-v2" ] && [ -x "$bin/docker-proxy" ]; then
    return 0
  fi
  log "fetching Docker Engine (Debian trixie packages docker.io and containerd) into $ENGINE_DIR"
  trixie_download docker.io containerd
  local x="$TRIXIE_OUT/x" new="$ENGINE_DIR/bin.new" deb
  for deb in "$TRIXIE_OUT"/*.deb; do dpkg-deb -x "$deb" "$x"; done
  rm -rf "$new" && mkdir -p "$new"
  install -m 0755 "$x/usr/sbin/dockerd" "$x/usr/sbin/docker-proxy" \
    "$x/usr/bin/containerd" "$x/usr/bin/containerd-shim-runc-v2" "$new/"
  ln -s /usr/sbin/runc "$new/runc"
  ln -s /usr/bin/tini-static "$new/docker-init"
  "$new/dockerd" --version >/dev/null 2>&1 || die "the fetched dockerd does not run on this machine ($new/dockerd --version)"
  for deb in "$TRIXIE_OUT"/*.deb; do dpkg-deb -f "$deb" Package Version | awk '{print $2}' | paste -sd' '; done > "$new/VERSIONS"
  rm -rf "$bin" && mv "$new" "$bin"
  rm -rf "$TRIXIE_OUT"
}

# Stop the engine answering on the socket (pid from its pid file, else from the socket's listener).
stop_engine() {
  local pidfile=$DOCKER_PIDFILE pid tmp=""
  if ! [ -s "$pidfile" ]; then
    local ss=(ss -xlpn)
    [ -z "$DOCKER_NETNS" ] || ss=(ip netns exec "$DOCKER_NETNS" ss -xlpn)
    pid=$("${ss[@]}" 2>/dev/null | awk -v s="$DOCKER_SOCK" '$5 == s' | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)
    [ -n "$pid" ] || die "cannot find the process of the engine on $DOCKER_SOCK: stop it yourself and run 'make setup' again"
    tmp=$(mktemp) && echo "$pid" > "$tmp" && pidfile=$tmp
  fi
  dockerd_stop "$pidfile" 180 || die "the engine on $DOCKER_SOCK did not stop: see $DOCKER_LOG"
  [ -z "$tmp" ] || rm -f "$tmp"
}

step_docker_engine() {
  local have
  if ! is_debian_root; then
    if ! docker info >/dev/null 2>&1; then
      command -v dockerd >/dev/null || die "no Docker engine is running: install Docker Engine $ENGINE_MIN_MAJOR or later with the Compose v2 plugin (https://docs.docker.com/engine/install/) and start it, then run 'make setup' again"
      [ "$(id -u)" = 0 ] || die "the Docker engine is installed but not running: start it (sudo systemctl start docker) and run 'make setup' again"
      log "starting dockerd"
      if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl start docker || true; fi
      if ! docker info >/dev/null 2>&1; then
        setsid dockerd >"$DOCKER_LOG" 2>&1 < /dev/null &
        engine_wait "$DOCKER_SOCK" 30 || die "dockerd did not start: see $DOCKER_LOG"
      fi
    fi
    have=$(docker version -f '{{.Server.Version}}' 2>/dev/null || true)
    [ "$(engine_major "$have")" -ge "$ENGINE_MIN_MAJOR" ] || die "Docker Engine $have answers: the reference stack's healthchecks use start_interval, which needs Engine $ENGINE_MIN_MAJOR or later (docs/engines.md); upgrade it and run 'make setup' again"
    return 0
  fi

  have=$(engine_version "$DOCKER_SOCK")
  if dpkg -s docker-ce >/dev/null 2>&1; then
    # Docker's own packages: upgrading them is their business (Debian's docker.io conflicts with them).
    [ "$(engine_major "$have")" -ge "$ENGINE_MIN_MAJOR" ] && return 0
    die "Docker CE ${have:-(not running)} is installed: start it, or upgrade it to Engine $ENGINE_MIN_MAJOR or later, and run 'make setup' again"
  fi
  # Debian 12's docker.io: a Docker CLI (a newer one in /usr/local/bin is kept and wins on PATH), containerd,
  # runc and tini, and the 20.10 engine that make test runs one scenario on (docs/engines.md).
  apt_install docker.io runc tini iproute2
  have=$(engine_version "$DOCKER_SOCK")  # installing docker.io may have started its 20.10
  [ "$(engine_major "$have")" -ge "$ENGINE_MIN_MAJOR" ] && return 0

  step_engine_fetch
  local path="$ENGINE_DIR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" want
  want=$("$ENGINE_DIR/bin/dockerd" --version | awk '{print $3}' | tr -d ,)
  if engine_under_systemd; then
    log "docker.service: Docker Engine $want in place of ${have:-the packaged engine} (drop-in aiwfe-engine.conf), restarting it"
    mkdir -p /etc/systemd/system/docker.service.d
    cat > /etc/systemd/system/docker.service.d/aiwfe-engine.conf <<EOF
# Written by aiwfe.rollback scripts/setup.sh: Docker Engine $want (Debian trixie's dockerd and containerd, Debian 12's
# runc) instead of Debian 12's 20.10, on the same data root. Remove this file and restart docker to go back.
[Service]
Environment="PATH=$path"
ExecStart=
ExecStart=$ENGINE_DIR/bin/dockerd -H fd:// \$DOCKER_OPTS
EOF
    systemctl daemon-reload
    systemctl restart docker.service
    engine_wait "$DOCKER_SOCK" 60 || die "docker.service did not come back: see journalctl -u docker"
  else
    if [ -n "$have" ]; then
      log "Docker Engine $have answers on $DOCKER_SOCK: stopping it (its containers stop; those with a restart policy start again under the new engine)"
      stop_engine
    fi
    log "starting Docker Engine $want on $DOCKER_SOCK (data root $DOCKER_DATA_ROOT, log $DOCKER_LOG)"
    dockerd_start "$ENGINE_DIR/bin/dockerd" "$path" "$DOCKER_SOCK" "$DOCKER_DATA_ROOT" "$DOCKER_EXEC_ROOT" \
      "$DOCKER_PIDFILE" "$DOCKER_LOG" "$DOCKER_NETNS" || die "dockerd did not start: see $DOCKER_LOG"
  fi
  have=$(engine_version "$DOCKER_SOCK")
  [ "$(engine_major "$have")" -ge "$ENGINE_MIN_MAJOR" ] || die "the engine on $DOCKER_SOCK is ${have:-not answering}, not $want: see $DOCKER_LOG"
  log "Docker Engine $have answers on $DOCKER_SOCK"
}

step_compose_plugin() {
  if docker compose version >/dev/null 2>&1; then return 0; fi
  is_debian_root || die "the Docker Compose v2 plugin is missing: install it (package docker-compose-plugin) and run 'make setup' again"
  # Debian 12 only has Compose v1; Debian 13 ships Compose v2 as a static binary.
  log "fetching the Compose v2 plugin (Debian trixie package docker-compose)"
  trixie_download docker-compose
  local debs=("$TRIXIE_OUT"/docker-compose_*.deb)
  dpkg-deb -x "${debs[0]}" "$TRIXIE_OUT/x"
  install -D -m 0755 "$TRIXIE_OUT/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/libexec/docker/cli-plugins/docker-compose
  rm -rf "$TRIXIE_OUT"
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
  # awx.awx joined the list later: a machine set up before it has the stamp but not awx.awx.
  if [ ! -f "$stamp" ] || [ ! -d "$COLL/awx/awx" ]; then
    log "extracting community.docker, community.postgresql, ansible.posix, awx.awx from ansible==$ANSIBLE_BUNDLE_VERSION"
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
        "ansible_collections/ansible/posix/",
        "ansible_collections/awx/awx/")
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
  if [ $# -gt 0 ]; then  # only the named steps, e.g. `scripts/setup.sh docker_engine`
    local step
    for step in "$@"; do
      declare -F "step_$step" >/dev/null || die "unknown step '$step'"
      "step_$step"
    done
    return 0
  fi
  step_host_tools
  step_ssh_server
  step_docker_engine
  step_compose_plugin
  step_venv
  step_collections
  step_ansible_test_offline
  step_base_image
  log "setup ok: engine $(docker version -f '{{.Server.Version}}' 2>/dev/null), $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), $("$VENV/bin/ansible" --version 2>/dev/null | sed -n 1p)"
}

main "$@"
