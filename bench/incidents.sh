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
. bench/lib.sh
rate=${1:-100000}
probes=${2:-200}
agents=${3:-4}
sync=${4:-full}
interval=50
bench_setup incidents
for i in $(seq 1 "$agents"); do bench_issue "$(printf 'bench-%03d' "$i")"; done
bench_issue probe-001
bench_collector "$sync"
# Background for the whole probing time plus warm-up and slack.
secs=$(( probes * interval / 1000 + 3 ))
per=$(( rate * secs / agents ))
cpu0=$(bench_cpu $cpid)
"$top/$build/bench/tocsin-bench-ingest" -a 127.0.0.1:$port -p pki \
  -n "$agents" -e "$per" -b 1000 -w 8 -r "$rate" \
  -L state/collector.db -P "$probes" -i "$interval"
cpu1=$(bench_cpu $cpid)
# Cross-check through tocsinctl itself: every probe is an incident.
seen=$("$ctl" -c collector.yaml incidents list --host probe-001 --json |
       python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
t0=$(date +%s%N)
"$ctl" -c collector.yaml incidents list --host probe-001 >/dev/null
t1=$(date +%s%N)
echo "tocsinctl incidents list --host probe-001: $seen incidents," \
     "one run $(( (t1 - t0) / 1000000 )) ms"
echo "collector: peak_rss=$(awk '/VmHWM/{print $2" "$3}' /proc/$cpid/status)" \
     "cpu=$(bench_secs $((cpu1 - cpu0)))" \
     "store=$(du -sh state | cut -f1) wal=$(du -h state/collector.db-wal | cut -f1)" \
     "sync=$sync rate=$rate agents=$agents"
[ "$seen" -eq "$probes" ]
