# Shared helpers for the shell scripts of aiwfe.rollback (sourced, not run).
# shellcheck shell=bash
log() { printf '[aiwfe] %s\n' "$*" >&2; }
die() { printf '[aiwfe] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Docker daemons: the machine's engine (setup.sh) and Debian 12's 20.10 beside it (test.sh) ---

# The server version of the daemon answering on a unix socket path ("" when none answers).
engine_version() {
  command -v docker >/dev/null || return 0
  timeout 20 docker -H "unix://$1" version -f '{{.Server.Version}}' 2>/dev/null || true
}

# The major number of an engine version ("26.1.5+dfsg1" -> 26; 0 when there is none).
engine_major() {
  local major=${1%%.*}
  if [[ $major =~ ^[0-9]+$ ]]; then echo "$major"; else echo 0; fi
}

# Wait until a daemon answers on the socket path (seconds, polled every 0.25 s).
engine_wait() {
  local sock=$1 seconds=${2:-60} i
  for ((i = 0; i < seconds * 4; i++)); do
    [ -n "$(engine_version "$sock")" ] && return 0
    sleep 0.25
  done
  return 1
}

# Start one dockerd in the background (its own session, output to LOG) and wait until it answers.
#   dockerd_start DOCKERD PATH SOCKET DATA_ROOT EXEC_ROOT PIDFILE LOG NETNS [dockerd args...]
# PATH is the daemon's own: dockerd finds containerd, the runc shim, runc, docker-proxy and docker-init there.
# NETNS: the name of a network namespace (ip netns) to run it in, "" for the host's. A daemon in its own network
# namespace has its own bridges, iptables rules and loopback ports: every dockerd flushes the DOCKER chains of
# the namespace it starts in, which would take the rules of the engine already running there with them.
dockerd_start() {
  local bin=$1 path=$2 sock=$3 data=$4 exec_root=$5 pidfile=$6 logf=$7 netns=$8
  shift 8
  local cmd=(env "PATH=$path" setsid "$bin" -H "unix://$sock" --data-root "$data" --exec-root "$exec_root"
             --pidfile "$pidfile" "$@")
  [ -z "$netns" ] || cmd=(nsenter "--net=/run/netns/$netns" "${cmd[@]}")
  mkdir -p "$data" "$(dirname "$logf")"
  printf '\n== %s %s\n' "$(date -u +%FT%TZ)" "${cmd[*]}" >> "$logf"
  "${cmd[@]}" >> "$logf" 2>&1 < /dev/null &
  engine_wait "$sock" 60
}

# Stop the dockerd whose pid is in PIDFILE (SIGTERM: it stops its containers and its containerd) and wait until
# it has exited. Never SIGKILL: a daemon killed in the middle of writing its data root can leave it broken.
dockerd_stop() {
  local pidfile=$1 seconds=${2:-120} pid i
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || { log "pid $pid in $pidfile is not a dockerd: not stopping it"; return 1; }
  kill -TERM "$pid"
  for ((i = 0; i < seconds * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  log "dockerd (pid $pid) did not exit within $seconds s"
  return 1
}

# Make a network namespace (with its loopback up) for a daemon of its own.
netns_ensure() {
  [ -e "/run/netns/$1" ] || ip netns add "$1"
  ip -n "$1" link set lo up
}
