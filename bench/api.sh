#!/usr/bin/env bash
# HTTP API benchmark (issue 13 item 7): the latency of GET
# /api/v1/incidents with N incidents in the store while
# tocsin-bench-ingest streams events at a fixed rate, and the ingest's
# durable throughput with and without an open dashboard's requests.
#
# 1. Seed: tocsin-bench-ingest -U sends N events, each with a rule of its
#    own, from 4 agents; the real engine opens an incident for each (no
#    SQL of ours). The script waits until the incidents table holds N.
# 2. Latency: while ingest runs at RATE events/s, bench/apiload.py
#    (stdlib http.client, TLS, a viewer token, one keep-alive connection)
#    asks REQ times a second, alternating, for the first page (default
#    limit 50) and for the page below the middle incident (cursor):
#    p50/p99/max of each.
# 3. Ingest impact: PAIRS pairs of unthrottled ingest runs (4 agents x
#    EVENTS), one alone and one while apiload.py plays an open dashboard
#    (dashboard/app.js refresh() every 5 s: counts() and the incidents
#    view, about 26 requests and 14,000 rows), the order alternating
#    within the pairs; durable events/s of each, with the load average.
# Usage: bench/api.sh [incidents] [rate_events_per_s] [secs] [req_per_s]
#                     [pairs] [events_per_agent]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ninc=${1:-100000}
rate=${2:-100000}
secs=${3:-20}
req=${4:-20}
pairs=${5:-3}
events=${6:-1500000}
agents=4
bench_setup api
for i in $(seq 1 "$agents"); do bench_issue "$(printf 'bench-%03d' "$i")"; done
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COLLECTOR_EXTRA="api: {listen: 127.0.0.1:$aport}"
bench_collector full
grep -q "listening on" collector.log || { cat collector.log >&2; exit 1; }
ingest="$bdir/bench/tocsin-bench-ingest"
count() {
  python3 - <<'PY'
import sqlite3
db = sqlite3.connect("file:state/collector.db?mode=ro", uri=True, timeout=5)
print(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
PY
}

# 1. Seed.
t0=$(date +%s%N)
"$ingest" -a "127.0.0.1:$port" -p pki -n "$agents" \
  -e $(( (ninc + agents - 1) / agents )) -b 1000 -w 8 -U | grep -v '^generator'
deadline=$((SECONDS + 600))
while [ "$(count)" -lt "$ninc" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.5
done
t1=$(date +%s%N)
have=$(count)
echo "seed: $have incidents in $(( (t1 - t0) / 1000000 )) ms" \
     "(store $(du -sh state | cut -f1))"
[ "$have" -ge "$ninc" ]
token=$("$ctl" -c collector.yaml tokens create bench --role viewer)
url="https://127.0.0.1:$aport"

# 2. Latency under ingest at a fixed rate.
load0=$(cut -d' ' -f1-3 /proc/loadavg)
cpu0=$(bench_cpu "$cpid")
"$ingest" -a "127.0.0.1:$port" -p pki -n "$agents" \
  -e $(( rate * (secs + 3) / agents )) -b 1000 -w 8 -r "$rate" > ingest.out &
ipid=$!
sleep 1
python3 "$top/bench/apiload.py" latency "$url" pki/ca.crt "$token" \
  "$secs" "$req" $(( have / 2 ))
wait "$ipid"
cpu1=$(bench_cpu "$cpid")
echo "ingest: $(grep -v '^generator' ingest.out)"
echo "collector: cpu=$(bench_secs $((cpu1 - cpu0))) in the latency run;" \
     "load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"

# 3. Ingest impact of an open dashboard.
run() { # run alone|dashboard
  local load out dpid=
  rm -f stop stop.ready
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$1" = dashboard ]; then
    python3 "$top/bench/apiload.py" dashboard "$url" pki/ca.crt "$token" \
      stop > dash.out &
    dpid=$!
    while [ ! -e stop.ready ] && kill -0 "$dpid" 2>/dev/null; do
      sleep 0.05
    done
  fi
  out=$("$ingest" -a "127.0.0.1:$port" -p pki -n "$agents" -e "$events" \
        -b 1000 -w 8 | grep -o 'durable_events_per_s=[0-9]*')
  touch stop
  [ -z "$dpid" ] || wait "$dpid"
  printf '%-9s %s load=%s' "$1" "$out" "$load"
  [ -z "$dpid" ] && echo || echo " $(cat dash.out)"
}
for p in $(seq 1 "$pairs"); do
  if [ $((p % 2)) -eq 1 ]; then run alone; run dashboard
  else run dashboard; run alone; fi
done
echo "collector: peak_rss=$(awk '/VmHWM/{print $2" "$3}' /proc/"$cpid"/status)" \
     "store=$(du -sh state | cut -f1) incidents=$(count)"
