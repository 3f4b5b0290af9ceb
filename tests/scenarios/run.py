#!/usr/bin/env python3
"""Play a generated scenario through real agents into a real collector
and measure correlation quality (issue 11 item 8).

One tocsin-agent process per host (its own certificate from `tocsinctl
pki`), one tocsin-collector with a real SQLite store, real TLS on
127.0.0.1, all in a temporary directory (tests/e2e/tocsin_e2e.py). The
scenario's 70 minutes of event time are played compressed: its lines
are appended to the tailed files in event-time order at --speed times
real time, so the collector receives the fleet's events interleaved as
it would live, while every event keeps the time written in its line
(`event_ts`). The scenario ends about a minute before the play starts,
and incidents.resolve_after is 1d so that the wall clock does not
resolve the compressed history half way through.

When every expected event is stored and the incidents are settled, it
reads `tocsinctl incidents list --json` and, if the command exists,
`tocsinctl problems list --json`, maps incidents to the ground truth by
(host, fingerprint) and reports (metrics.py): pairwise grouping
precision, recall and F1, root-cause top-1 accuracy, and the reduction
from events to problems + unlinked incidents. Without a problems
command every incident is its own group: that is the baseline.

    python3 tests/scenarios/run.py [--hosts 20] [--seed 1] [--speed 120] [--json]

The binaries come from $TOCSIN_BUILD (default ./build).
"""

import argparse
import calendar
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import generate  # noqa: E402
import metrics  # noqa: E402
import tocsin_e2e as e2e  # noqa: E402


def play(truth, src, dst, speed, tick=0.05):
    """Append every host's generated lines to its tailed file in
    event-time order, SPEED times faster than real time (0: all at
    once). Returns the seconds the play took."""
    rows = []
    for h in truth["hosts"]:
        with open(os.path.join(src, "%s.log" % h)) as f:
            for i, line in enumerate(f):
                rows.append((line.split(" ", 1)[0], h, i, line))
    rows.sort()
    files = {h: open(os.path.join(dst, "%s.log" % h), "a") for h in truth["hosts"]}
    t0 = time.monotonic()
    start = truth["start"]
    try:
        i = 0
        while i < len(rows):
            if speed > 0:
                now = time.monotonic() - t0
                due = start + now * speed
            else:
                due = float("inf")
            dirty = set()
            while i < len(rows) and _epoch(rows[i][0]) <= due:
                files[rows[i][1]].write(rows[i][3])
                dirty.add(rows[i][1])
                i += 1
            for h in dirty:
                files[h].flush()
            if i < len(rows):
                time.sleep(tick)
    finally:
        for f in files.values():
            f.close()
    return time.monotonic() - t0


def _epoch(iso):
    # 2025-12-05T00:00:10.882Z
    t = time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(iso[20:23]) / 1000.0


def log_events(env, hosts, times=None):
    """host -> number of stored log events (kind log). With TIMES (a
    list), each one's event_ts (ns, None when it has none) is appended."""
    n = {h: 0 for h in hosts}
    for e in env.events():
        if e.get("kind") == "log" and e.get("host") in n:
            n[e["host"]] += 1
            if times is not None:
                times.append(e.get("event_ts"))
    return n


def event_times(env, truth):
    """How the stored events' own times sit in the scenario: (events
    without event_ts, events outside [start, start + span], seconds
    from the first event time to the last)."""
    times = []
    log_events(env, truth["hosts"], times)
    lo = truth["start"] * 10**9
    hi = (truth["start"] + truth["span_s"]) * 10**9
    have = [t for t in times if t]
    outside = sum(1 for t in have if not lo <= t <= hi)
    span = (max(have) - min(have)) / 1e9 if have else 0.0
    return len(times) - len(have), outside, span


def wait_stored(env, truth, timeout):
    """Until every host's expected log events are stored and the
    incidents hold every non-ok one (their counts add up)."""
    want = truth["events_by_host"]
    hosts = truth["hosts"]

    def hwm_ok():
        agents = {a["name"]: a for a in json.loads(env.ctl("agents", "list", "--json"))}
        return all(h in agents and agents[h]["hwm"] >= want[h] for h in hosts)

    e2e.wait_for(hwm_ok, timeout, "every agent's high-water mark", interval=1)
    got = e2e.wait_for(lambda: (lambda n: n if n == want else None)(log_events(env, hosts)),
                       timeout, "the expected log events per host", interval=1)
    bad = sum(truth["problem_events_by_host"].values())

    def settled():
        inc = json.loads(env.ctl("incidents", "list", "--json"))
        return inc if sum(i["count"] for i in inc if i["kind"] == "log") >= bad else None

    inc = e2e.wait_for(settled, timeout, "incidents counting every problem event", interval=1)
    return got, inc


def read_problems(env):
    """The problems listing, or None when tocsinctl has no such command."""
    rc, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "problems", "list",
                            "--json"], expect=None)
    if rc != 0:
        return None, (err.strip().splitlines() or ["exit %d" % rc])[0]
    return json.loads(out), None


def evaluate(truth, incidents, problems, events):
    """The report (a dict) from the ground truth, the incidents and
    problems listings (problems None: baseline) and the stored log
    events."""
    of, roots = generate.truth_maps(truth)
    truth_of = {}
    unexpected = []
    found = set()
    for inc in incidents:
        key = (inc["host"], inc["fingerprint"])
        if inc["kind"] != "log":
            continue  # agent-silent and the like: not the scenario's
        if key in of:
            truth_of[inc["id"]] = of[key]
            found.add(key)
        else:
            # Not in the truth: a problem of its own, and reported.
            truth_of[inc["id"]] = ("unexpected", inc["id"])
            unexpected.append({"id": inc["id"], "host": key[0], "fingerprint": key[1]})
    missing = sorted(k for k in of if k not in found)
    ids = sorted(truth_of)
    pred, pred_root, ngroups, conflicts = metrics.groups_of(ids, problems or [])
    # incidents list --json names each incident's problem (or null) once
    # problems exist: both sides of the link must agree.
    mismatch = []
    for inc in incidents:
        if inc["id"] in pred and "problem" in inc and problems is not None:
            want = ("problem", inc["problem"]) if inc["problem"] is not None \
                else ("incident", inc["id"])
            if pred[inc["id"]] != want:
                mismatch.append(inc["id"])
    pw = metrics.pairwise(pred, truth_of)
    t1 = metrics.top1(pred, pred_root, truth_of, roots)
    nevents = sum(events.values())
    ntrue = len(set(truth_of.values()))
    return {
        "problems_command": problems is not None,
        "hosts": len(truth["hosts"]),
        "seed": truth["seed"],
        "lines": truth["lines"],
        "events": nevents,
        "incidents": len(ids),
        "problems": len(problems or []),
        "groups": ngroups,
        "true_problems": ntrue,
        "precision": pw["precision"],
        "recall": pw["recall"],
        "f1": pw["f1"],
        "pairs": {"tp": pw["tp"], "fp": pw["fp"], "fn": pw["fn"]},
        "top1": t1["accuracy"],
        "top1_correct": t1["correct"],
        "top1_evaluated": t1["evaluated"],
        "top1_misses": [list(m) for m in t1["misses"]],
        "reduction": metrics.reduction(nevents, ngroups),
        "reduction_incidents": metrics.reduction(nevents, len(ids)),
        "reduction_ideal": metrics.reduction(nevents, ntrue),
        "missing": [list(k) for k in missing],
        "unexpected": unexpected,
        "conflicts": [list(c) for c in conflicts],
        "link_mismatch": mismatch,
    }


def text_report(r, note=None):
    def pct(x):
        return "n/a" if x is None else "%.2f%%" % (100 * x)

    def num(x):
        return "n/a" if x is None else "%.3f" % x

    out = []
    out.append("scenario: seed %d, %d hosts, %d lines, %d events stored"
               % (r["seed"], r["hosts"], r["lines"], r["events"]))
    out.append("event time: %.0f s from first to last event (%d without event_ts, "
               "%d outside the scenario)" % (r.get("event_span_s", 0),
                                             r.get("event_ts_missing", 0),
                                             r.get("event_ts_outside", 0)))
    out.append("incidents: %d (expected %d missing, %d unexpected); true problems: %d"
               % (r["incidents"], len(r["missing"]), len(r["unexpected"]), r["true_problems"]))
    if r["problems_command"]:
        out.append("problems: %d; groups (problems + unlinked incidents): %d"
                   % (r["problems"], r["groups"]))
    else:
        out.append("problems: no `tocsinctl problems list` (%s); baseline: every "
                   "incident is its own group (%d groups)" % (note, r["groups"]))
    out.append("pairwise: precision %s  recall %s  F1 %s  (pairs tp %d fp %d fn %d)"
               % (num(r["precision"]), num(r["recall"]), num(r["f1"]),
                  r["pairs"]["tp"], r["pairs"]["fp"], r["pairs"]["fn"]))
    out.append("root cause top-1: %s (%d of %d multi-incident problems)"
               % (num(r["top1"]), r["top1_correct"], r["top1_evaluated"]))
    out.append("reduction events -> groups: %s (events -> incidents %s; ideal %s)"
               % (pct(r["reduction"]), pct(r["reduction_incidents"]), pct(r["reduction_ideal"])))
    for k in r["missing"]:
        out.append("missing incident: %s %s" % tuple(k))
    for u in r["unexpected"]:
        out.append("unexpected incident %d: %s %s" % (u["id"], u["host"], u["fingerprint"]))
    return "\n".join(out)


def run(env, hosts=20, seed=1, speed=120.0, timeout=300):
    """Play the scenario in ENV (a tocsin_e2e.Env) and return (report,
    truth, incidents, problems)."""
    span = generate.SPAN_S
    start = int(time.time()) - span - 60
    names, _ = generate.fleet(hosts)
    env.make_pki(agents=names)
    live = os.path.join(env.dir, "live")
    os.makedirs(live)
    scen = os.path.join(env.dir, "scenario")
    truth = generate.generate(scen, seed, hosts, start, "127.0.0.1:%d" % env.port,
                              env.pki, os.path.join(env.dir, "state"), live)
    for h in names:
        open(os.path.join(live, "%s.log" % h), "w").close()
    env.collector_config("incidents: {resolve_after: 1d}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    agents = [env.agent(os.path.join(scen, "agents", "%s.yaml" % h), name=h).start()
              for h in names]
    for a in agents:
        a.wait_log("connected to", timeout=60)
    took = play(truth, os.path.join(scen, "logs"), live, speed)
    events, incidents = wait_stored(env, truth, timeout)
    problems, note = read_problems(env)
    if problems is not None:
        # Problems are decided in the engine step that made the
        # incidents; read again until two listings agree.
        prev = None
        deadline = time.monotonic() + timeout
        while problems != prev:
            e2e.check(time.monotonic() < deadline, "problems still changing")
            prev = problems
            time.sleep(1)
            problems, _ = read_problems(env)
    incidents = json.loads(env.ctl("incidents", "list", "--json"))
    rep = evaluate(truth, incidents, problems, events)
    rep["event_ts_missing"], rep["event_ts_outside"], rep["event_span_s"] = \
        event_times(env, truth)
    rep["play_s"] = round(took, 1)
    rep["speed"] = speed
    rep["note"] = note
    return rep, truth, incidents, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speed", type=float, default=120.0,
                    help="event time per real second (0: all at once)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    env = e2e.Env("scenario")
    ok = False
    try:
        rep, _, _, _ = run(env, a.hosts, a.seed, a.speed, a.timeout)
        for d in env.daemons:
            if d.alive():
                d.stop()
        reports = e2e.sanitizer_reports(env)
        e2e.check(not reports, "sanitizer reports:\n" + "\n".join(reports[:10]))
        ok = True
    finally:
        env.cleanup(ok)
    if a.json:
        print(json.dumps(rep, indent=1, sort_keys=True))
    else:
        print(text_report(rep, rep["note"]))
        print("played %.0f s of event time in %.1f s" % (generate.SPAN_S, rep["play_s"]))


if __name__ == "__main__":
    main()
