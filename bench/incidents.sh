#!/usr/bin/env bash
# Incident latency benchmark: event arrival at the collector to incident
# visible in the store that tocsinctl reads, p50/p90/p99/max, while
# tocsin-bench-ingest streams background events at a fixed rate from N
# simulated agents (real protocol, real TLS, real collector and SQLite
# store). The probes come from one more agent, probe-001: one critical
# event with a new rule every interval, each one opening an incident.
# Usage: bench/incidents.sh [rate_events_per_s] [probes] [agents] [sync]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-100000}
probes=${2:-200}
agents=${3:-4}
sync=${4:-full}
interval=50
build=${BUILD:-build-bench}
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
top=$(pwd)
work=$(mktemp -d /tmp/tocsin-bench-incidents.XXXXXX)
cd "$work"
ctl="$top/$build/collector/tocsinctl"
"$ctl" pki init pki >/dev/null
for i in $(seq 1 "$agents"); do
  "$ctl" pki issue-agent pki "$(printf 'bench-%03d' "$i")" >/dev/null
done
"$ctl" pki issue-agent pki probe-001 >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > collector.yaml <<YAML
listen: 127.0.0.1:$port
tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}
store: {path: state/collector.db, sync: $sync}
YAML
"$top/$build/collector/tocsin-collector" -d -c collector.yaml 2> ${COLLOG:-collector.log} &
cpid=$!
trap 'kill $cpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" collector.log && break; sleep 0.05; done
# Background for the whole probing time plus warm-up and slack.
secs=$(( probes * interval / 1000 + 3 ))
per=$(( rate * secs / agents ))
cpu0=$(awk '{print $14+$15}' /proc/$cpid/stat)
"$top/$build/bench/tocsin-bench-ingest" -a 127.0.0.1:$port -p pki \
  -n "$agents" -e "$per" -b 1000 -w 8 -r "$rate" \
  -L state/collector.db -P "$probes" -i "$interval"
cpu1=$(awk '{print $14+$15}' /proc/$cpid/stat)
hz=$(getconf CLK_TCK)
# Cross-check through tocsinctl itself: every probe is an incident.
seen=$("$ctl" -c collector.yaml incidents list --host probe-001 --json |
       python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
t0=$(date +%s%N)
"$ctl" -c collector.yaml incidents list --host probe-001 >/dev/null
t1=$(date +%s%N)
echo "tocsinctl incidents list --host probe-001: $seen incidents," \
     "one run $(( (t1 - t0) / 1000000 )) ms"
echo "collector: peak_rss=$(awk '/VmHWM/{print $2" "$3}' /proc/$cpid/status)" \
     "cpu=$(python3 -c "print('%.2fs' % (($cpu1-$cpu0)/$hz))")" \
     "store=$(du -sh state | cut -f1) wal=$(du -h state/collector.db-wal | cut -f1)" \
     "sync=$sync rate=$rate agents=$agents"
[ "$seen" -eq "$probes" ]
