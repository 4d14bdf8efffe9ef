#!/usr/bin/env bash
# Managed hosts for the multi-host tests (issue 15, molecule/fleet) on this one machine: each host is a network
# namespace with its own address and its own sshd, all on one Linux bridge in the root namespace.
#   bridge aiwfe-fleet0            10.231.0.1/24 (root namespace; the stacks publish their ports on this address)
#   host hK (K = 1..N)             netns aiwfe-fleet-hK, eth0 10.231.0.(10+K)/24 (veth aiwfe-fhK in the bridge),
#                                  default route via 10.231.0.1, sshd on 10.231.0.(10+K):22; TCP to its
#                                  127.0.0.1 goes to 10.231.0.1 (see below)
# Every sshd runs as root in the machine's file system (only the network is its own): from a host's shell `docker`
# reaches the machine's engine and the checkout's venv python works by absolute path. Root logs in with the one
# client key DIR/id_ed25519 only (DIR/authorized_keys); no passwords, no PAM, no DNS lookups. Each host's host key,
# config, pid file and log are under DIR/hK/.
# The stacks publish their ports on 10.231.0.1 (AIWFE_BIND_ADDRESS of the reference stack); the collection reads a
# service's published port and asks http://127.0.0.1:PORT, as on a real host with its own engine. So that a host's
# loopback reaches the machine's engine the same way, each namespace sends TCP for 127.0.0.1 to 10.231.0.1 (nat
# OUTPUT DNAT and POSTROUTING SNAT inside the namespace, route_localnet on; nothing in the root namespace's
# firewall changes). Docker's own DNAT on the bridge address then forwards to the container.
#   ssh -i DIR/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@10.231.0.11
# Usage: fleet_hosts.sh up N DIR   make hosts h1..hN (N 1..200); what exists already is kept; safe to re-run
#        fleet_hosts.sh down DIR   remove every host, the bridge, the sshds and what up wrote in DIR (also after a
#                                  half-failed up)
# Needs root, iproute2 and openssh-server (scripts/setup.sh installs it).
set -euo pipefail

BRIDGE=aiwfe-fleet0
NET=10.231.0
GATEWAY=$NET.1
NS_PREFIX=aiwfe-fleet-h
VETH_PREFIX=aiwfe-fh
SSHD=/usr/sbin/sshd
MARKER=.aiwfe-fleet-hosts

say() { printf 'fleet_hosts: %s\n' "$*"; }
die() { printf 'fleet_hosts: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { die "usage: $0 up N DIR | $0 down DIR"; }

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, a bridge and sshd on port 22)"
  command -v ip >/dev/null 2>&1 || die "ip (iproute2) is missing: run scripts/setup.sh"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
link_exists() { ip link show "$1" >/dev/null 2>&1; }

# The sshd of one host, when its pid file names a live sshd process.
sshd_pid() {
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$SSHD" ] || return 1
  echo "$pid"
}

bridge_up() {
  if ! link_exists "$BRIDGE"; then
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
    say "bridge $BRIDGE created"
  fi
  if ! ip -4 -o addr show dev "$BRIDGE" | grep -q " $GATEWAY/24 "; then
    ip addr add "$GATEWAY/24" dev "$BRIDGE" || die "cannot give $BRIDGE the address $GATEWAY/24"
  fi
  ip link set "$BRIDGE" up
  # Traffic from the hosts to the stacks' published ports is routed to the Docker networks (DNAT): forwarding on.
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || sysctl -q -w net.ipv4.ip_forward=1 >/dev/null
}

# One nat rule in a namespace, added unless it is there.
nat_rule() {
  local ns=$1 chain=$2
  shift 2
  ip netns exec "$ns" iptables -w -t nat -C "$chain" "$@" 2>/dev/null \
    || ip netns exec "$ns" iptables -w -t nat -A "$chain" "$@" || die "cannot add a nat rule in $ns: $chain $*"
}

# The network of host K: namespace, veth pair into the bridge, address, loopback, default route.
host_net_up() {
  local ns=$NS_PREFIX$1 veth=$VETH_PREFIX$1 addr=$NET.$((10 + $1))
  ns_exists "$ns" || ip netns add "$ns" || die "cannot create network namespace $ns"
  if ! ip netns exec "$ns" ip link show eth0 >/dev/null 2>&1; then
    link_exists "$veth" && ip link del "$veth"  # a left-over half of a pair whose other end is gone
    ip link add "$veth" type veth peer name "${veth}p" || die "cannot create veth pair $veth"
    ip link set "${veth}p" netns "$ns" || die "cannot move ${veth}p into $ns"
    ip netns exec "$ns" ip link set "${veth}p" name eth0
  fi
  link_exists "$veth" || die "$ns has an eth0 but $veth is missing: run '$0 down DIR' and up again"
  ip link set "$veth" master "$BRIDGE"
  ip link set "$veth" up
  ip netns exec "$ns" ip link set lo up
  if ! ip netns exec "$ns" ip -4 -o addr show dev eth0 | grep -q " $addr/24 "; then
    ip netns exec "$ns" ip addr add "$addr/24" dev eth0
  fi
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip route replace default via "$GATEWAY" dev eth0
  # The host's loopback TCP goes to the machine (see the top of this file).
  ip netns exec "$ns" sysctl -q -w net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1 >/dev/null
  nat_rule "$ns" OUTPUT -d 127.0.0.1/32 -p tcp -j DNAT --to-destination "$GATEWAY"
  nat_rule "$ns" POSTROUTING -s 127.0.0.1/32 -o eth0 -p tcp -j SNAT --to-source "$addr"
}

write_sshd_config() {
  local k=$1 dir=$2 addr=$NET.$((10 + $1))
  local hdir=$dir/h$k
  cat > "$hdir/sshd_config.new" <<EOF
# Written by scripts/fleet_hosts.sh: host h$k of the test fleet (network namespace $NS_PREFIX$k).
ListenAddress $addr
Port 22
HostKey $hdir/ssh_host_ed25519_key
PidFile $hdir/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $dir/authorized_keys
# $dir may lie under a world-writable directory such as /var/tmp, which StrictModes refuses.
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
EOF
  mv "$hdir/sshd_config.new" "$hdir/sshd_config"
}

host_sshd_up() {
  local k=$1 dir=$2 ns=$NS_PREFIX$1 addr=$NET.$((10 + $1))
  local hdir=$dir/h$k pid
  mkdir -p "$hdir"
  chmod 0700 "$hdir"
  [ -f "$hdir/ssh_host_ed25519_key" ] \
    || ssh-keygen -q -t ed25519 -N '' -C "aiwfe-fleet-h$k" -f "$hdir/ssh_host_ed25519_key" \
    || die "cannot make the host key of h$k"
  write_sshd_config "$k" "$dir"
  "$SSHD" -t -f "$hdir/sshd_config" || die "sshd refuses $hdir/sshd_config"
  if pid=$(sshd_pid "$hdir/sshd.pid"); then
    # Running: let it read the (possibly rewritten) config again.
    kill -HUP "$pid"
    return 0
  fi
  rm -f "$hdir/sshd.pid"
  ip netns exec "$ns" "$SSHD" -f "$hdir/sshd_config" -E "$hdir/sshd.log" \
    || die "sshd of h$k did not start: see $hdir/sshd.log"
  local i
  for ((i = 0; i < 50; i++)); do
    sshd_pid "$hdir/sshd.pid" >/dev/null && ip netns exec "$ns" ss -Hltn "src $addr:22" | grep -q . && return 0
    sleep 0.1
  done
  die "sshd of h$k does not listen on $addr:22: see $hdir/sshd.log"
}

cmd_up() {
  local n=$1 dir=$2 k
  if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 200 ]; then
    die "N must be a number from 1 to 200 (got '$n')"
  fi
  need_root
  [ -x "$SSHD" ] || die "$SSHD is missing: run scripts/setup.sh (it installs Debian's openssh-server)"
  for t in ssh ssh-keygen ss iptables sysctl; do command -v "$t" >/dev/null 2>&1 || die "$t is missing: run scripts/setup.sh"; done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  chmod 0700 "$dir"
  touch "$dir/$MARKER"
  mkdir -p /run/sshd  # sshd's privilege separation directory
  chmod 0755 /run/sshd
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C aiwfe-fleet-client -f "$dir/id_ed25519" \
    || die "cannot make the client key $dir/id_ed25519"
  install -m 0600 "$dir/id_ed25519.pub" "$dir/authorized_keys"

  bridge_up
  for ((k = 1; k <= n; k++)); do
    host_net_up "$k"
    host_sshd_up "$k" "$dir"
  done

  # Every host answers over SSH with the client key.
  local addr out
  for ((k = 1; k <= n; k++)); do
    addr=$NET.$((10 + k))
    out=$(ssh -i "$dir/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o ConnectTimeout=5 -o LogLevel=ERROR "root@$addr" 'cat /proc/self/net/dev >/dev/null && echo ok' 2>&1) \
      || die "h$k ($addr) does not answer over SSH: $out (see $dir/h$k/sshd.log)"
    say "h$k: netns $NS_PREFIX$k, $addr (veth $VETH_PREFIX$k in $BRIDGE), sshd pid $(cat "$dir/h$k/sshd.pid"), ssh root@$addr answers"
  done
  say "up: $n host(s) on $BRIDGE ($GATEWAY/24); client key $dir/id_ed25519"
}

cmd_down() {
  local dir=$1 ns k hdir pid pids v
  need_root
  # The hosts' processes (their sshd and its sessions, started by up) stop first, then the namespaces go.
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${NS_PREFIX}[0-9]+$" || true); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill $pids 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
        sleep 0.1
      done
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns" || die "cannot remove network namespace $ns"
    say "removed netns $ns"
  done
  # An sshd whose pid file is in DIR but that runs outside a namespace of ours (should not happen; be thorough).
  if [ -d "$dir" ]; then
    for hdir in "$dir"/h*/; do
      [ -d "$hdir" ] || continue
      if pid=$(sshd_pid "$hdir/sshd.pid"); then kill "$pid" 2>/dev/null || true; fi
    done
  fi
  for v in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${VETH_PREFIX}[0-9]+p?$" || true); do
    ip link del "$v" 2>/dev/null || true
  done
  if link_exists "$BRIDGE"; then
    ip link del "$BRIDGE" || die "cannot remove bridge $BRIDGE"
    say "removed bridge $BRIDGE"
  fi
  # What up wrote in DIR: keys, authorized_keys, hK/ (configs, host keys, pid files, logs); DIR itself when empty.
  if [ -d "$dir" ]; then
    rm -f "$dir/id_ed25519" "$dir/id_ed25519.pub" "$dir/authorized_keys" "$dir/$MARKER"
    for hdir in "$dir"/h*/; do
      [ -d "$hdir" ] || continue
      k=$(basename "$hdir")
      [[ $k =~ ^h[0-9]+$ ]] || continue
      rm -f "$hdir"/ssh_host_ed25519_key "$hdir"/ssh_host_ed25519_key.pub "$hdir"/sshd_config \
        "$hdir"/sshd_config.new "$hdir"/sshd.pid "$hdir"/sshd.log
      rmdir "$hdir" 2>/dev/null || say "kept $hdir (it holds files up did not write)"
    done
    rmdir "$dir" 2>/dev/null || say "kept $dir (it holds files up did not write)"
  fi
  say "down: no fleet host, sshd or bridge left"
}

case "${1:-}" in
  up) [ $# -eq 3 ] || usage; cmd_up "$2" "$3" ;;
  down) [ $# -eq 2 ] || usage; cmd_down "$2" ;;
  *) usage ;;
esac
