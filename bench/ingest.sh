#!/usr/bin/env bash
# Collector ingest benchmark: N simulated agents (tocsin-bench-ingest,
# real protocol, real TLS) stream events into a real collector with its
# SQLite store; reports durable events/s and the collector's peak RSS and
# CPU time. Usage: bench/ingest.sh [agents] [events_per_agent] [sync]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
agents=${1:-4}
per=${2:-250000}
sync=${3:-full}
bench_setup ingest
for i in $(seq 1 "$agents"); do bench_issue "$(printf 'bench-%03d' "$i")"; done
bench_collector "$sync"
cpu0=$(bench_cpu $cpid)
"$top/$build/bench/tocsin-bench-ingest" -a 127.0.0.1:$port -p pki \
  -n "$agents" -e "$per" -b 1000 -w 8
cpu1=$(bench_cpu $cpid)
echo "collector: peak_rss=$(awk '/VmHWM/{print $2" "$3}' /proc/$cpid/status)" \
     "cpu=$(bench_secs $((cpu1 - cpu0)))" \
     "store=$(du -sh state | cut -f1) sync=$sync"
