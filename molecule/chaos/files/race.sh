#!/usr/bin/env bash
# Two identical runs started at the same instant, ROUNDS times (molecule/chaos): both wait for the same moment (the next
# whole second but one) and exec the command; each run's output goes to LOGDIR/round<N>-<a|b>.log. Prints one JSON
# array: per round, both exit codes and how far apart the two really started (milliseconds).
#
#   race.sh ROUNDS LOGDIR -- ansible-playbook ARGS...
set -euo pipefail
rounds=$1 logdir=$2
shift 2
[ "${1:-}" = "--" ] && shift
mkdir -p "$logdir"
sep=""
printf '['
for round in $(seq 1 "$rounds"); do
  go=$(( $(date +%s) + 2 ))
  pids=()
  for side in a b; do
    (
      while [ "$(date +%s)" -lt "$go" ]; do sleep 0.005; done
      date +%s%3N > "$logdir/round$round-$side.start"
      exec "$@"
    ) > "$logdir/round$round-$side.log" 2>&1 &
    pids+=("$!")
  done
  rcs=()
  for pid in "${pids[@]}"; do
    if wait "$pid"; then rcs+=(0); else rcs+=("$?"); fi
  done
  a=$(cat "$logdir/round$round-a.start") b=$(cat "$logdir/round$round-b.start")
  printf '%s{"round": %d, "rc": [%d, %d], "apart_ms": %d}' "$sep" "$round" "${rcs[0]}" "${rcs[1]}" $(( a > b ? a - b : b - a ))
  sep=", "
done
printf ']\n'
