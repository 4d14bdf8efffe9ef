#!/usr/bin/env bash
# Health of the running stack (runbook "E. Complete System Rollback", step 5).
# Usage (from anywhere): scripts/health_check.sh [-p PROJECT]
# Asks every app service's /health on its published port (docker compose port SERVICE 8000)
# and the api through caddy over HTTPS. Exit status 0 only when everything reports ok.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
compose=(docker compose)
if [ "${1:-}" = "-p" ] && [ -n "${2:-}" ]; then
  compose+=(-p "$2")
elif [ $# -gt 0 ]; then
  echo "usage: $0 [-p PROJECT]" >&2
  exit 2
fi

summary() {
  python3 -c 'import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print("no JSON answer")
    sys.exit(1)
bad = {k: v for k, v in d.get("checks", {}).items() if v != "ok"}
print(d.get("status"), d.get("version"), json.dumps(bad) if bad else "")
sys.exit(0 if d.get("status") == "ok" else 1)'
}

rc=0
for svc in api worker memory-service perception-service reasoning-service; do
  addr=$("${compose[@]}" port "$svc" 8000 2>/dev/null || true)
  if [ -z "$addr" ]; then
    printf '%-20s not running\n' "$svc"
    rc=1
    continue
  fi
  line=$(curl -s -m 5 "http://$addr/health" | summary) || rc=1
  printf '%-20s %s\n' "$svc" "$line"
done
addr=$("${compose[@]}" port caddy_reverse_proxy 443 2>/dev/null || true)
if [ -z "$addr" ]; then
  printf '%-20s not running\n' "caddy (https)"
  rc=1
else
  line=$(curl -sk -m 5 "https://localhost:${addr##*:}/health" | summary) || rc=1
  printf '%-20s %s\n' "caddy (https)" "$line"
fi
exit $rc
