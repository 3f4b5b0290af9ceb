#!/usr/bin/env bash
# HTTP API benchmark (issue 13 item 7): the latency of GET
# /api/v1/incidents with N incidents in the store while
# tocsin-bench-ingest streams events at a fixed rate, and the ingest's
# durable throughput with and without an open dashboard's requests.
#
# 1. Seed: tocsin-bench-ingest -U sends N events, each with a rule of its
#    own; the real engine opens an incident for each. SEED_ENGINE=K opens
#    only K through the engine and copies the rest (see below), checked.
# 2. Latency: bench/apiload.py (stdlib http.client, TLS, a viewer token,
#    one keep-alive connection) asks REQ times a second, alternating, for
#    the first page (default limit 50) and for the page below the middle
#    incident (cursor): p50/p99/max of each, for up to 10 s with no
#    ingest, then for SECS while ingest runs at RATE events/s.
# 3. Ingest impact: PAIRS pairs of unthrottled ingest runs (4 agents x
#    EVENTS), one alone and one while apiload.py plays an open dashboard
#    (dashboard/app.js refresh() every 5 s: the summary and the
#    incidents view's two pages of 100: 3 requests, up to 200 rows;
#    DASH=dashboard-old plays the dashboard before the summary: 18
#    requests and 7,000 rows here), the order alternating within the
#    pairs; durable events/s of each, with the load average.
# Usage: bench/api.sh [incidents] [rate_events_per_s] [secs] [req_per_s]
#                     [pairs] [events_per_agent]
# KEEP=1 keeps the temp dir. DASH=dashboard-old: the old dashboard's requests.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ninc=${1:-100000}
rate=${2:-100000}
secs=${3:-20}
req=${4:-20}
pairs=${5:-3}
events=${6:-1000000}
agents=4
bench_setup api
for i in $(seq 1 "$agents"); do bench_issue "$(printf 'bench-%03d' "$i")"; done
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COLLECTOR_EXTRA="api: {listen: 127.0.0.1:$aport}"
bench_collector full
# KEEP=1 keeps the temp dir (the store, for EXPLAIN QUERY PLAN).
trap 'kill $cpid 2>/dev/null; wait 2>/dev/null
      [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
grep -q "listening on" collector.log || { cat collector.log >&2; exit 1; }
ingest="$bdir/bench/tocsin-bench-ingest"
count() {
  python3 - <<'PY'
import sqlite3
db = sqlite3.connect("file:state/collector.db?mode=ro", uri=True, timeout=5)
print(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
PY
}

# 1. Seed. The engine opens the first $seed incidents itself (all of
# them by default: 100,000 take about 7 s since the engine's step costs
# what it touches; before, 96,000 in one step took over 5 minutes,
# bench/README.md "API"). SEED_ENGINE=K (the smoke test) makes the rest
# copies of its rows, made with the collector stopped: every column as the
# engine wrote it but id, rule and fingerprint (rule bench-c<id>), and
# the "opened" timeline entry with them. The script checks the copies
# against their originals, then starts the collector again, whose
# engine loads them all.
seed=$(( ninc < ${SEED_ENGINE:-$ninc} ? ninc : ${SEED_ENGINE:-$ninc} ))
t0=$(date +%s%N)
"$ingest" -a "127.0.0.1:$port" -p pki -n 1 -e "$seed" -b 1000 -w 8 -U |
  grep -v '^generator'
deadline=$((SECONDS + 600))
while [ "$(count)" -lt "$seed" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.2
done
t1=$(date +%s%N)
echo "seed: the engine opened $(count) incidents in $(( (t1 - t0) / 1000000 )) ms"
kill "$cpid"; wait "$cpid" || true
python3 - "$ninc" "$seed" <<'PY'
import sqlite3, sys
ninc, seed = int(sys.argv[1]), int(sys.argv[2])
db = sqlite3.connect("state/collector.db")
cols = [r[1] for r in db.execute("PRAGMA table_info(incidents)")]
rest = [c for c in cols if c not in ("id", "rule", "fingerprint")]
with db:
    for off in range(seed, ninc, seed):
        db.execute(
            "INSERT INTO incidents(id, rule, fingerprint, %s)"
            " SELECT id + ?1, 'bench-c' || (id + ?1),"
            " host || char(31) || 'bench-c' || (id + ?1), %s"
            " FROM incidents WHERE id <= ?2 AND id + ?1 <= ?3"
            % (", ".join(rest), ", ".join(rest)), (off, seed, ninc))
        db.execute(
            "INSERT INTO timeline(incident_id, ts, what, who, detail)"
            " SELECT incident_id + ?1, ts, what, 'rule:bench-c' ||"
            " (incident_id + ?1), detail FROM timeline"
            " WHERE incident_id <= ?2 AND incident_id + ?1 <= ?3"
            " AND what = 'opened'", (off, seed, ninc))
# The copies equal their originals but for id, rule and fingerprint.
same = " AND ".join("c.%s IS o.%s" % (x, x) for x in rest)
bad = db.execute(
    "SELECT count(*) FROM incidents c JOIN incidents o"
    " ON o.id = (c.id - 1) %% ?1 + 1 WHERE c.id > ?1 AND NOT (%s"
    " AND c.rule = 'bench-c' || c.id"
    " AND c.fingerprint = c.host || char(31) || c.rule)" % same,
    (seed,)).fetchone()[0]
n = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
fps = db.execute("SELECT count(DISTINCT fingerprint) FROM incidents").fetchone()[0]
print("seed: %d incidents (%d copies, %d differing from their original),"
      " %d distinct fingerprints" % (n, n - seed, bad, fps))
sys.exit(0 if bad == 0 and n == ninc and fps == n else 1)
PY
# Two "listening on" lines a start: the agents' port and the API's.
n0=$(grep -c "listening on" collector.log)
"$bdir/collector/tocsin-collector" -d -c collector.yaml 2>> collector.log &
cpid=$!
t0=$(date +%s%N)
for _ in $(seq 1 1200); do
  [ "$(grep -c "listening on" collector.log)" -ge $((n0 + 2)) ] && break
  sleep 0.05
done
t1=$(date +%s%N)
have=$(count)
echo "seed: collector restarted with $have incidents in" \
     "$(( (t1 - t0) / 1000000 )) ms (store $(du -sh state | cut -f1))"
[ "$have" -ge "$ninc" ]
token=$("$ctl" -c collector.yaml tokens create bench --role viewer)
url="https://127.0.0.1:$aport"

# 2. Latency, first with no ingest (the API and the store alone), then
# under ingest at a fixed rate.
echo "idle (no ingest): load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$top/bench/apiload.py" latency "$url" pki/ca.crt "$token" \
  "$(( secs < 10 ? secs : 10 ))" "$req" $(( have / 2 ))
echo "at $rate events/s:"
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
    python3 "$top/bench/apiload.py" "${DASH:-dashboard}" "$url" pki/ca.crt \
      "$token" stop > dash.out &
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
