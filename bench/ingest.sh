#!/usr/bin/env bash
# Collector ingest benchmark: N simulated agents (tocsin-bench-ingest,
# real protocol, real TLS) stream events into a real collector with its
# SQLite store; reports durable events/s and the collector's peak RSS and
# CPU time. Usage: bench/ingest.sh [agents] [events_per_agent] [sync]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-4}
per=${2:-250000}
sync=${3:-full}
build=${BUILD:-build-bench}
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
top=$(pwd)
work=$(mktemp -d /tmp/tocsin-bench-ingest.XXXXXX)
cd "$work"
ctl="$top/$build/collector/tocsinctl"
"$ctl" pki init pki >/dev/null
for i in $(seq 1 "$agents"); do
  "$ctl" pki issue-agent pki "$(printf 'bench-%03d' "$i")" >/dev/null
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > collector.yaml <<YAML
listen: 127.0.0.1:$port
tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}
store: {path: state/collector.db, sync: $sync}
YAML
"$top/$build/collector/tocsin-collector" -d -c collector.yaml 2> collector.log &
cpid=$!
trap 'kill $cpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" collector.log && break; sleep 0.05; done
cpu0=$(awk '{print $14+$15}' /proc/$cpid/stat)
"$top/$build/bench/tocsin-bench-ingest" -a 127.0.0.1:$port -p pki \
  -n "$agents" -e "$per" -b 1000 -w 8
cpu1=$(awk '{print $14+$15}' /proc/$cpid/stat)
hz=$(getconf CLK_TCK)
echo "collector: peak_rss=$(awk '/VmHWM/{print $2" "$3}' /proc/$cpid/status)" \
     "cpu=$(python3 -c "print('%.2fs' % (($cpu1-$cpu0)/$hz))")" \
     "store=$(du -sh state | cut -f1) sync=$sync"
