#!/usr/bin/env bash
# Debian 12's own Docker 20.10 beside the machine's engine, for the scenarios engine_20 and engine_faults (docs/engines.md).
# Sourced by scripts/test.sh (which starts it before the molecule lanes and stops it after them); run by
# molecule/engine_faults to restart it in the middle of a rollback:
#   scripts/engine20.sh restart    # SIGTERM the daemon (it stops its containers), start it again, wait until it answers
# Needs LOGDIR (test.sh sets it; build/test-logs when run).
if [ -z "${ROOT:-}" ]; then
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  # shellcheck source=scripts/lib.sh
  . "$ROOT/scripts/lib.sh"
fi
LOGDIR=${LOGDIR:-$ROOT/build/test-logs}

# The machine's engine is 26 (make setup); the collection must keep working on 20.10. That engine runs beside it on
# a socket, data root and network namespace of its own: a second dockerd started in the host's namespace would
# flush the iptables chains of the engine already running there, and its ports would meet the other lane's. The
# data root is kept between runs (images loaded once); the daemon and the namespace are removed after the stage.
E20_NAME=${AIWFE_ENGINE20_NAME:-aiwfe-docker-20}
E20_DOCKERD=${AIWFE_ENGINE20_DOCKERD:-/usr/sbin/dockerd}
E20_SOCK=/run/$E20_NAME.sock
E20_ROOT=/var/lib/$E20_NAME
E20_PIDFILE=/run/$E20_NAME.pid
E20_VOLUMES_SIZE=${AIWFE_ENGINE20_VOLUMES_SIZE:-1g}
E20_READY="$LOGDIR/engine20.ready"
# What build-images.sh needs to find up to date there (saved from the machine's engine, never built twice).
E20_IMAGES=(local/debian:bookworm aiwfe/python-base:bookworm aiwfe/postgres:15 aiwfe/caddy:2.6)

# Why the 20.10 engine cannot run here ("" when it can).
engine20_missing() {
  if [ "$(id -u)" != 0 ]; then echo "not root"; return; fi
  if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then echo "ip (iproute2) or nsenter missing"; return; fi
  [ -x "$E20_DOCKERD" ] || { echo "no $E20_DOCKERD (Debian 12's docker.io)"; return; }
  [ "$(engine_major "$("$E20_DOCKERD" --version 2>/dev/null | awk '{print $3}')")" = 20 ] \
    || echo "$E20_DOCKERD is not Docker 20.x"
}

# Start the 20.10 engine (if it is not running) and load the base images it lacks; writes $E20_READY (ok/failed).
engine20_up() {
  local start=$SECONDS missing=() img want have
  rm -f "$E20_READY"
  netns_ensure "$E20_NAME" || { echo failed > "$E20_READY"; return 1; }
  if [ "$(engine_major "$(engine_version "$E20_SOCK")")" != 20 ]; then
    # Its volumes on a disk of their own (a tmpfs of E20_VOLUMES_SIZE), so molecule/engine_20 can fill the disk a
    # restore stages on for real without touching the machine's.
    mkdir -p "$E20_ROOT/volumes"
    mountpoint -q "$E20_ROOT/volumes" || mount -t tmpfs -o "size=$E20_VOLUMES_SIZE,mode=0701" aiwfe-e20-volumes "$E20_ROOT/volumes" \
      || { log "cannot mount a tmpfs on $E20_ROOT/volumes"; echo failed > "$E20_READY"; return 1; }
    # Debian 12's own containerd 1.6, runc, docker-proxy and docker-init: the PATH without the engine-26 directory.
    dockerd_start "$E20_DOCKERD" /usr/sbin:/usr/bin:/sbin:/bin "$E20_SOCK" "$E20_ROOT" "/run/$E20_NAME" \
      "$E20_PIDFILE" "$LOGDIR/dockerd-20.log" "$E20_NAME" \
      || { log "Docker 20.10 did not start: see build/test-logs/dockerd-20.log"; echo failed > "$E20_READY"; return 1; }
  fi
  for img in "${E20_IMAGES[@]}"; do
    want=$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null) \
      || { log "$img is missing on the machine's engine"; echo failed > "$E20_READY"; return 1; }
    have=$(docker -H "unix://$E20_SOCK" image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
    [ "$want" = "$have" ] || missing+=("$img")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    docker save "${missing[@]}" | docker -H "unix://$E20_SOCK" load -q >/dev/null \
      || { log "loading ${missing[*]} into Docker 20.10 failed"; echo failed > "$E20_READY"; return 1; }
    docker -H "unix://$E20_SOCK" image prune -f >/dev/null || true  # the images those tags named before
  fi
  log "Docker $(engine_version "$E20_SOCK") on $E20_SOCK (netns $E20_NAME) ready in $((SECONDS - start)) s; images loaded: ${missing[*]:-none}"
  echo ok > "$E20_READY"
}

engine20_down() {
  dockerd_stop "$E20_PIDFILE" 120 || true
  ! mountpoint -q "$E20_ROOT/volumes" || umount "$E20_ROOT/volumes" || true
  ip netns del "$E20_NAME" 2>/dev/null || true
  rm -f "$E20_READY"
}

# Restart the running 20.10 engine as a host's service manager would (SIGTERM, then start): its containers are
# stopped with it and those with a restart policy come back when it starts.
engine20_restart() {
  [ "$(engine_major "$(engine_version "$E20_SOCK")")" = 20 ] || die "Docker 20.10 is not running on $E20_SOCK"
  dockerd_stop "$E20_PIDFILE" 120 || die "Docker 20.10 did not stop"
  dockerd_start "$E20_DOCKERD" /usr/sbin:/usr/bin:/sbin:/bin "$E20_SOCK" "$E20_ROOT" "/run/$E20_NAME" \
    "$E20_PIDFILE" "$LOGDIR/dockerd-20.log" "$E20_NAME" || die "Docker 20.10 did not start again: see $LOGDIR/dockerd-20.log"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
  restart) engine20_restart ;;
  *) die "usage: $0 restart" ;;
  esac
fi
