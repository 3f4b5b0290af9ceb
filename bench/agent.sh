#!/usr/bin/env bash
# Agent scan benchmark: a 1,000,000-line file with 3% matching lines is
# tailed from the start by a real agent connected to a real collector.
# Reports lines/s until the agent's spool holds the file's end offset
# (scan + match + spool), lines/s until the collector has every event
# (end to end), and the agent's peak RSS and CPU time.
# Usage: bench/agent.sh [lines] [match_percent]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
pct=${2:-3}
build=${BUILD:-build-bench}
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
top=$(pwd)
work=$(mktemp -d /tmp/tocsin-bench-agent.XXXXXX)
cd "$work"
ctl="$top/$build/collector/tocsinctl"
"$ctl" pki init pki >/dev/null
"$ctl" pki issue-agent pki web-01 >/dev/null
python3 - "$lines" "$pct" > app.log <<'PY'
import sys
n, pct = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for i in range(n):
    if (i * 37) % 100 < pct:  # pct% of lines, spread out
        out.write("2026-11-26T10:00:00.%06dZ app[311]: ERROR upstream timeout id=%d\n" % (i % 1000000, i))
    else:
        out.write("2026-11-26T10:00:00.%06dZ app[311]: INFO GET /api/v1/items/%d 200 12ms\n" % (i % 1000000, i))
PY
expect=$(grep -c ERROR app.log)
size=$(stat -c %s app.log)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > collector.yaml <<YAML
listen: 127.0.0.1:$port
tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}
store: {path: state/collector.db}
YAML
cat > agent.yaml <<YAML
collector: {address: 127.0.0.1:$port}
tls: {ca: pki/ca.crt, cert: pki/web-01.crt, key: pki/web-01.key}
state_dir: state/web-01
files:
  - path: app.log
    rules:
      - {name: app-error, match: 'ERROR (?<detail>.*)', severity: error}
YAML
"$top/$build/collector/tocsin-collector" -d -c collector.yaml 2> collector.log &
cpid=$!
trap 'kill $cpid $apid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" collector.log && break; sleep 0.05; done
t0=$(date +%s.%N)
"$top/$build/agent/tocsin-agent" -d -c agent.yaml 2> agent.log &
apid=$!
# Scan done when the spooled offset reaches the file size.
while :; do
  off=$(sqlite3 -readonly state/web-01/spool.db "select max(offset) from files where path like 'file:%'" 2>/dev/null || echo 0)
  [ "${off:-0}" = "$size" ] && break
  sleep 0.01
done
t1=$(date +%s.%N)
while :; do
  n=$("$ctl" -c collector.yaml events list --json --limit 0 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" -ge "$expect" ] && break
  sleep 0.1
done
t2=$(date +%s.%N)
acpu=$(awk '{print $14+$15}' /proc/$apid/stat)
hz=$(getconf CLK_TCK)
python3 - <<PY
lines, t0, t1, t2 = $lines, $t0, $t1, $t2
print("lines=%d matching=%d size=%dB" % (lines, $expect, $size))
print("scan+spool: %.3fs = %.0f lines/s" % (t1 - t0, lines / (t1 - t0)))
print("end to end (all events durable at the collector): %.3fs = %.0f lines/s" % (t2 - t0, lines / (t2 - t0)))
print("agent: cpu=%.2fs peak_rss=%s (now: %s)" % ($acpu / $hz, "$(awk '/VmHWM/{print $2" "$3}' /proc/$apid/status)", "$(grep -E 'Rss(Anon|File)' /proc/$apid/status | tr -s ' \t\n' ' ')"))
PY
