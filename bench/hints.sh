#!/usr/bin/env bash
# Hint latency benchmark (issue 12): an event that opens an incident
# whose runbook matches, to the hint stored on the agent of that host,
# p50/p90/p99/max, idle or while tocsin-bench-ingest streams background
# events at a fixed rate from simulated agents (real protocol, TLS,
# collector, SQLite store, runbooks). The probes go through real agents
# (tocsin-agent hint-NN): the script appends one line to an agent's log
# every interval, round robin; the agent's rule gives each line a
# fingerprint of its own, so each opens an incident, the runbook
# `probe` matches it, and the collector sends a signed hint to that
# agent, which stores it in its state database and acks it.
#
# No clock is read while it runs: every time comes from what the
# programs record (all on this machine's wall clock):
#   read    the event's ts, when the agent read the line (the incident's
#           first_seen in tocsinctl incidents list --json); the collector
#           keeps no arrival time, so this is an upper bound: it adds the
#           agent's spool commit and send to arrival -> stored
#   issued  the collector's engine step that decided the hint
#   sent    the hint sender wrote the HINT frame (tocsinctl hints list)
#   stored  the agent stored it (tocsin-agent hints --json received_ns,
#           taken as it begins the transaction whose commit the ack
#           follows; stored -> acked bounds that commit)
#   acked   the collector received HINT_ACK (tocsinctl hints list)
# Usage: bench/hints.sh [rate_events_per_s] [probes] [hint_agents]
#                       [interval_ms] [bg_agents]
# rate 0 = idle (no background load). HINTS_CSV=FILE writes every probe's
# times. KEEP=1 keeps the temp dir. The run fails if a probe's hint is
# not stored within 30 s of the last probe.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rate=${1:-100000}
probes=${2:-200}
nagents=${3:-2}
interval=${4:-50}
bg=${5:-4}
bench_setup hints
agents=()
for i in $(seq 1 "$nagents"); do agents+=("$(printf 'hint-%02d' "$i")"); done
bench_issue "${agents[@]}"
if [ "$rate" -eq 0 ]; then bg=0; fi
for i in $(seq 1 "$bg"); do bench_issue "$(printf 'bench-%03d' "$i")"; done
mkdir -p runbooks logs state
cat > runbooks/probe.md <<'MD'
---
id: probe
title: Hint latency probe
match: {class: ['probe:*'], severity: [critical]}
---
A probe of bench/hints.sh: nothing to do.
MD
# Spread off: each probe must give one hint (the incident's), not a
# problem's fan-out to every host of the class.
COLLECTOR_EXTRA="runbooks: {dir: runbooks}
correlation: {spread: {enabled: false}}"
bench_collector full
agent="$bdir/agent/tocsin-agent"
apids=()
for a in "${agents[@]}"; do
  : > "logs/$a.log"
  cat > "$a.yaml" <<YAML
collector: {address: 127.0.0.1:$port}
tls: {ca: pki/ca.crt, cert: pki/$a.crt, key: pki/$a.key}
state_dir: state/$a
hints: {public_key: pki/hint-signing.pub}
files:
  - path: logs/$a.log
    rules:
      - {name: probe, match: 'hintprobe n=(?<n>\d+)', severity: critical,
         fingerprint: '{rule}:{n}'}
YAML
  "$agent" -d -c "$a.yaml" 2> "$a.err" &
  apids+=($!)
done
# KEEP=1 keeps the temp dir (logs, databases) for a look afterwards.
trap 'kill ${apids[*]} $cpid 2>/dev/null; wait 2>/dev/null
      [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
for a in "${agents[@]}"; do
  for _ in $(seq 1 200); do
    grep -q "connected to" "$a.err" && break
    sleep 0.05
  done
  grep -q "connected to" "$a.err" || { cat "$a.err" >&2; exit 1; }
done
load0=$(cut -d' ' -f1-3 /proc/loadavg)
cpu0=$(bench_cpu "$cpid")
ipid=
if [ "$rate" -gt 0 ]; then
  # Background for the whole probing time plus warm-up and slack.
  secs=$(( probes * interval / 1000 + 4 ))
  per=$(( rate * secs / bg ))
  "$bdir/bench/tocsin-bench-ingest" -a "127.0.0.1:$port" -p pki \
    -n "$bg" -e "$per" -b 1000 -w 8 -r "$rate" > ingest.out &
  ipid=$!
  sleep 1
fi
# The probes: one line every interval, round robin over the agents.
python3 - "$probes" "$interval" "${agents[@]}" <<'PY'
import sys, time
n, interval, agents = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
files = [open("logs/%s.log" % a, "a", buffering=1) for a in agents]
t = time.monotonic()
for k in range(n):
    files[k % len(files)].write("hintprobe n=%d\n" % k)
    t += interval / 1000.0
    time.sleep(max(0.0, t - time.monotonic()))
PY
# Wait for every hint to be stored (the agents' CLI reads their state
# database read-only beside them), at most 30 s.
stored() {
  local total=0 c
  for a in "${agents[@]}"; do
    c=$("$agent" hints --json -c "$a.yaml" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    total=$((total + c))
  done
  echo "$total"
}
deadline=$((SECONDS + 30))
while [ "$(stored)" -lt "$probes" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.5
done
[ -z "$ipid" ] || wait "$ipid" || true
cpu1=$(bench_cpu "$cpid")
load1=$(cut -d' ' -f1-3 /proc/loadavg)
"$ctl" -c collector.yaml incidents list --json > incidents.json
"$ctl" -c collector.yaml hints list --json > chints.json
for a in "${agents[@]}"; do
  "$agent" hints --json -c "$a.yaml" > "ahints-$a.json"
done
[ -z "$ipid" ] || grep -h . ingest.out | tail -n 2
python3 - "$probes" "${agents[@]}" <<'PY'
import json, os, sys
probes, agents = int(sys.argv[1]), sys.argv[2:]
inc = {i["id"]: i for i in json.load(open("incidents.json"))}
col = {h["id"]: h for h in json.load(open("chints.json"))}
rows = []
for a in agents:
    for h in json.load(open("ahints-%s.json" % a)):
        if h["source"] != "runbook:probe":
            continue
        i = inc[int(h["incident"])]
        c = col[h["id"]]
        rows.append((i["first_seen"], h["issued"], c["sent_at"],
                     h["received_ns"], c["acked_at"]))

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))] / 1e6

def line(name, v):
    return "%s p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms" % (
        name, pct(v, 50), pct(v, 90), pct(v, 99), max(v) / 1e6)

# HINTS_CSV=FILE: one line per probe, in read order (ns since the epoch).
if os.environ.get("HINTS_CSV"):
    with open(os.environ["HINTS_CSV"], "w") as f:
        f.write("read,issued,sent,stored,acked\n")
        for r in sorted(rows):
            f.write("%d,%d,%d,%d,%d\n" % r)
if not rows:
    print("hint latency: probes=%d stored=0" % probes)
    sys.exit(1)
print(line("hint latency (read -> stored): probes=%d stored=%d" %
           (probes, len(rows)), [r[3] - r[0] for r in rows]))
# stored is taken before the agent's commit, acked after it: read ->
# acked bounds read -> committed from above.
print(line("  read -> acked (upper bound)", [r[4] - r[0] for r in rows
                                            if r[4]]))
for name, a, b in (("read -> issued", 0, 1), ("issued -> sent", 1, 2),
                   ("sent -> stored", 2, 3), ("stored -> acked", 3, 4)):
    print("  " + line(name, [r[b] - r[a] for r in rows if r[b] and r[a]]))
sys.exit(0 if len(rows) >= probes else 1)
PY
echo "collector: cpu=$(bench_secs $((cpu1 - cpu0)))" \
     "peak_rss=$(awk '/VmHWM/{print $2" "$3}' /proc/"$cpid"/status)" \
     "rate=$rate bg_agents=$bg hint_agents=$nagents interval=${interval}ms"
echo "load average: before $load0, after $load1"
