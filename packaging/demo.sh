#!/usr/bin/env bash
# Quick start demo: install dependencies, build, make a PKI, start a
# collector and an agent on 127.0.0.1 with the embedded SQLite store,
# append lines to a log and show the events and incidents the collector
# made of them; then three more agents and a dependency failure (a cache
# out of memory, the web servers timing out on it) that the collector
# correlates into one problem with the cache as its root cause; and
# tocsinctl explain saying why each incident is, or is not, in it; and
# the runbook that matched, sent as signed hints to those hosts.
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

echo "== PKI: a CA, the collector's certificate and the agents'"
"$ctl" pki init pki
for h in web-01 web-02 web-03 cache-01; do "$ctl" pki issue-agent pki $h; done

cat > collector.yaml <<YAML
listen: 127.0.0.1:$port
tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}
store: {path: state/collector.db}
runbooks: {dir: runbooks}
YAML
# A runbook: what to do when hosts time out on a dependency that failed.
# Sent, signed with pki/hint-signing.key (made by pki init), to every host
# of a reference problem it matches.
mkdir -p runbooks
cat > runbooks/cache-down.md <<'MD'
---
id: cache-down
title: A cache the web servers use is down
match:
  class: [upstream-timeout, cache-oom]
  problem_rule: [reference]
links: ["https://wiki.example/runbooks/cache-down"]
---
1. On the cache host: `redis-cli info memory` (used_memory against maxmemory).
2. If it is full: raise maxmemory, or restart it during the incident.
3. The web servers recover by themselves once the cache answers.
MD
cat > agent.yaml <<YAML
collector: {address: 127.0.0.1:$port}
tls: {ca: pki/ca.crt, cert: pki/web-01.crt, key: pki/web-01.key}
hints: {public_key: pki/hint-signing.pub}
state_dir: state/web-01
files:
  - path: logs/app.log
    rules:
      - {name: upstream-timeout, match: 'connect to (?<peer>\\S+) timed out', severity: error}
      - {name: app-error, match: 'ERROR (?<detail>.*)', severity: error}
      - {name: app-slow, match: 'WARN slow request (?<ms>[0-9]+)ms', severity: warning}
YAML
: > logs/app.log
# Three more agents: two web servers like web-01, and the cache they use.
for h in web-02 web-03 cache-01; do
  if [ $h = cache-01 ]; then
    rule="{name: cache-oom, match: 'OOM (?<detail>.*)', severity: critical}"
  else
    rule="{name: upstream-timeout, match: 'connect to (?<peer>\\S+) timed out', severity: error}"
  fi
  cat > $h.yaml <<YAML
collector: {address: 127.0.0.1:$port}
tls: {ca: pki/ca.crt, cert: pki/$h.crt, key: pki/$h.key}
hints: {public_key: pki/hint-signing.pub}
state_dir: state/$h
files:
  - path: logs/$h.log
    rules:
      - $rule
YAML
  : > logs/$h.log
done

"$col" -n -c collector.yaml
"$agent" -n -c agent.yaml
"$col" -d -c collector.yaml 2> collector.log &
cpid=$!
# Its store is created and migrated before it listens: tocsinctl reads it.
for _ in $(seq 1 100); do
  grep -q "listening on" collector.log && break
  sleep 0.1
done
"$agent" -d -c agent.yaml 2> agent.log &
apid=$!
pids="$apid $cpid"
trap 'kill $pids 2>/dev/null; wait 2>/dev/null' EXIT

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

echo "== a dependency failure: cache-01 runs out of memory, three web servers time out on it"
for h in web-02 web-03 cache-01; do
  "$agent" -n -c $h.yaml >/dev/null
  "$agent" -d -c $h.yaml 2> $h-agent.log &
  pids="$pids $!"
done
sleep 1
echo "$(date -u +%FT%TZ) OOM command not allowed when used memory > maxmemory" >> logs/cache-01.log
sleep 0.5
echo "$(date -u +%FT%TZ) ERROR connect to cache-01:6379 timed out" >> logs/app.log
for h in web-02 web-03; do
  echo "$(date -u +%FT%TZ) ERROR connect to cache-01:6379 timed out" >> logs/$h.log
done
for _ in $(seq 1 100); do
  n=$("$ctl" -c collector.yaml problems list --json | python3 -c 'import json,sys; p=json.load(sys.stdin); print(sum(len(x["incidents"]) for x in p if x["root_cause"] == "cache-01"))')
  [ "$n" -ge 4 ] && break
  sleep 0.2
done
echo "== incidents: the symptoms are inhibited, the root cause is not (tocsinctl incidents list --json)"
"$ctl" -c collector.yaml incidents list --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    print("incident %-3s %-9s %-17s problem %-5s inhibited %s" % (i["id"], i["host"], i["rule"], i["problem"], i["inhibited"]))'
echo
echo "== the problem they form (tocsinctl problems list)"
"$ctl" -c collector.yaml problems list
echo
echo "== its root-cause candidates, links and timeline (tocsinctl problems show 1)"
"$ctl" -c collector.yaml problems show 1
echo
echo "== why: the problem's opening, links, score terms and state (tocsinctl explain problem 1)"
"$ctl" -c collector.yaml explain problem 1
echo
web=$("$ctl" -c collector.yaml incidents list --json | python3 -c '
import json, sys
print(min(i["id"] for i in json.load(sys.stdin) if i["host"] == "web-02"))')
echo "== why web-02's incident is in it (tocsinctl explain incident $web)"
"$ctl" -c collector.yaml explain incident "$web"
echo
echo "== why the payment error of the start is in no problem (tocsinctl explain incident 1)"
"$ctl" -c collector.yaml explain incident 1
echo

echo "== the runbook reached the hosts: signed hints, verified and stored by each agent"
for i in $(seq 1 100); do
  n=$("$agent" hints --json -c web-02.yaml | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" -ge 1 ] && break
  sleep 0.2
done
"$ctl" -c collector.yaml hints list
echo
echo "== on web-02 (tocsin-agent hints -c web-02.yaml, then hints show)"
"$agent" hints -c web-02.yaml
hid=$("$agent" hints --json -c web-02.yaml | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$agent" hints show "$hid" -c web-02.yaml
echo
echo "demo files, logs and state are in $demo"
