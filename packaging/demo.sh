#!/usr/bin/env bash
# Quick start demo: install dependencies, build, make a PKI, start a
# collector and an agent on 127.0.0.1 with the embedded SQLite store,
# append lines to a log and show the events the collector stored.
# Everything lives under ./demo (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bash packaging/install-deps.sh

build=build-demo
[ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
ctl="$top/$build/collector/tocsinctl"
col="$top/$build/collector/tocsin-collector"
agent="$top/$build/agent/tocsin-agent"

demo="$top/demo"
rm -rf "$demo"
mkdir -p "$demo/logs"
cd "$demo"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "== PKI: a CA, the collector's certificate and one agent's"
"$ctl" pki init pki
"$ctl" pki issue-agent pki web-01

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
  - path: logs/app.log
    rules:
      - {name: app-error, match: 'ERROR (?<detail>.*)', severity: error}
      - {name: app-slow, match: 'WARN slow request (?<ms>[0-9]+)ms', severity: warning}
YAML
: > logs/app.log

"$col" -n -c collector.yaml
"$agent" -n -c agent.yaml
"$col" -d -c collector.yaml 2> collector.log &
cpid=$!
"$agent" -d -c agent.yaml 2> agent.log &
apid=$!
trap 'kill $apid $cpid 2>/dev/null; wait 2>/dev/null' EXIT

echo "== appending to logs/app.log"
for i in 1 2 3; do
  echo "$(date -u +%FT%TZ) INFO request ok id=$i" >> logs/app.log
done
echo "$(date -u +%FT%TZ) ERROR payment gateway timeout order=1042" >> logs/app.log
echo "$(date -u +%FT%TZ) WARN slow request 2300ms path=/checkout" >> logs/app.log
echo "$(date -u +%FT%TZ) ERROR payment gateway timeout order=1043" >> logs/app.log

for _ in $(seq 1 50); do
  n=$("$ctl" -c collector.yaml events list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" -ge 3 ] && break
  sleep 0.2
done
echo "== events stored by the collector (tocsinctl events list)"
"$ctl" -c collector.yaml events list
echo
echo "== the same as JSON (tocsinctl events list --json --limit 1)"
"$ctl" -c collector.yaml events list --json --limit 1
echo
# The incident engine runs a step every 100 ms after the commit.
for _ in $(seq 1 50); do
  n=$("$ctl" -c collector.yaml incidents list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
echo "== incidents opened from those events (tocsinctl incidents list)"
"$ctl" -c collector.yaml incidents list
echo
echo "== the first one, with its timeline (tocsinctl incidents show 1)"
"$ctl" -c collector.yaml incidents show 1
echo
echo "demo files, logs and state are in $demo"
