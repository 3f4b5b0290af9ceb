#!/usr/bin/env python3
"""Correlation quality end to end (issue 11 item 8): a small generated
scenario (tests/scenarios/generate.py, 10 hosts) is played through ten
real agents into a real collector (tests/scenarios/run.py), and the
grouping is measured against the ground truth.

What is asserted: the ground truth is complete (every scenario kind is
present, every true problem names a root cause among its own hosts, no
incident belongs to two problems), every event is stored, every
expected incident appears and no other, `tocsinctl problems list`
answers with every field, and the quality stays above floors.

The floors are well below what this scenario measures today (F1 1.0,
top-1 1.0, reduction 99.54% at 13 hosts; bench/README.md "issue 11")
and below the issue's targets (F1 0.95, top-1 0.9, 99% at fleet
scale), so they catch a regression without being tuned to this data
set. (The 8 sporadic noise errors of one class are one trend problem
in the truth since the default trend rule makes them one; before that
was settled the truth called them unrelated and F1 read 0.778.)
"""

import os
import sys

import tocsin_e2e as e2e

sys.path.insert(0, os.path.join(os.environ.get("TOCSIN_SRC", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")), "tests", "scenarios"))
import run as scenario  # noqa: E402

HOSTS = 13
SEED = 1
SPEED = 300.0  # 70 minutes of event time in 14 s

# Floors well below today's figures (see the docstring).
F1_FLOOR = 0.6
TOP1_FLOOR = 0.75
REDUCTION_FLOOR = 0.98  # events -> groups; today 1,246 events -> 7 groups

KINDS = {"dependency", "creep", "deploy", "simultaneous", "flap", "noise",
         "cascade"}


def check_truth(truth):
    kinds = {p["kind"] for p in truth["problems"]}
    e2e.check(kinds == KINDS, "scenario kinds: %r" % sorted(kinds))
    seen = {}
    for p in truth["problems"]:
        hosts = {i["host"] for i in p["incidents"]}
        e2e.check(p["incidents"], "problem %s has no incident" % p["id"])
        # A recurring class (trend) has no root-cause host.
        e2e.check(p["root_cause"] in hosts
                  or (p["root_cause"] is None and p["kind"] == "noise"),
                  "problem %s: root %s not among %r" % (p["id"], p["root_cause"], hosts))
        for i in p["incidents"]:
            key = (i["host"], i["fingerprint"])
            e2e.check(key not in seen, "%r in %s and %s" % (key, seen.get(key), p["id"]))
            seen[key] = p["id"]
            e2e.check(truth["problem_events_by_host"][i["host"]] > 0, repr(key))
    e2e.check(len(seen) == truth["incidents"], "incident count")
    # Multi-host problems are what correlation is for: there must be some.
    multi = [p for p in truth["problems"] if len(p["incidents"]) >= 3]
    e2e.check(len(multi) >= 3, "multi-host problems: %r" % [p["id"] for p in multi])


def test_scenario(env):
    rep, truth, incidents, problems = scenario.run(env, HOSTS, SEED, SPEED, timeout=240)
    print(scenario.text_report(rep, rep["note"]))
    check_truth(truth)
    e2e.check(rep["events"] == truth["events"],
              "stored %d events, expected %d" % (rep["events"], truth["events"]))
    # Every event carries the time written in its line (the agent's
    # time.field), so the engine sees 70 minutes, not the 14 s of play.
    e2e.check(rep["event_ts_missing"] == 0 and rep["event_ts_outside"] == 0,
              "event times: %d missing, %d outside" % (rep["event_ts_missing"],
                                                       rep["event_ts_outside"]))
    e2e.check(rep["event_span_s"] > 0.9 * truth["span_s"],
              "events span %.0f s" % rep["event_span_s"])
    e2e.check(not rep["missing"], "missing incidents: %r" % rep["missing"])
    e2e.check(not rep["unexpected"], "unexpected incidents: %r" % rep["unexpected"])
    e2e.check(rep["incidents"] == truth["incidents"],
              "%d incidents, expected %d" % (rep["incidents"], truth["incidents"]))
    e2e.check(not rep["conflicts"], "incident in two problems: %r" % rep["conflicts"])
    e2e.check(not rep["link_mismatch"],
              "incidents whose `problem` disagrees with problems list: %r"
              % rep["link_mismatch"])
    for k in ("precision", "recall", "f1", "top1", "reduction"):
        e2e.check(rep[k] is not None and 0.0 <= rep[k] <= 1.0, "%s = %r" % (k, rep[k]))
    e2e.check(rep["top1_evaluated"] >= 3, "top-1 over %d problems" % rep["top1_evaluated"])
    e2e.check(problems is not None, "tocsinctl problems list did not answer")
    if problems is not None:
        ids = {i["id"] for i in incidents}
        for p in problems:
            for k in ("id", "state", "title", "rule", "incidents", "hosts",
                      "root_cause", "opened_at", "resolved_at"):
                e2e.check(k in p, "problem %r lacks %s" % (p.get("id"), k))
            e2e.check(set(p["incidents"]) <= ids, "problem %r: unknown incidents" % p["id"])
    e2e.check(rep["f1"] >= F1_FLOOR, "F1 %.3f < %.3f" % (rep["f1"], F1_FLOOR))
    e2e.check(rep["top1"] >= TOP1_FLOOR, "top-1 %.3f < %.3f" % (rep["top1"], TOP1_FLOOR))
    e2e.check(rep["reduction"] >= REDUCTION_FLOOR,
              "reduction %.4f < %.4f" % (rep["reduction"], REDUCTION_FLOOR))


if __name__ == "__main__":
    e2e.main([test_scenario])
