#!/usr/bin/env python3
"""Rules end to end with the real agent and collector: fold windows (exact
counts, also across a SIGKILL), rate-limit summaries, action drop, time
captures and labels, and `tocsin-agent test-rules` on a sample file."""

import json
import os
import signal
import subprocess
import time

import tocsin_e2e as e2e

RULES = r"""labels: {env: prod}
files:
  - path: %(log)s
    labels: {svc: web}
    rules:
      - {name: noise, match: 'DEBUG', action: drop}
      - name: upstream
        match: 'ERROR code=(?<code>\d+)'
        fingerprint: '{rule}:{code}'
        fold_window: 2s
      - name: flood
        match: 'FLOOD (?<n>\d+)'
        severity: warning
        rate_limit: {max: 10, per: 2s}
      - name: timed
        match: '^(?<ts>\S+) TIMED'
        severity: info
        time: {field: ts}
        labels: {svc: api}
"""


def start(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [], extra="")
    with open(conf) as f:
        text = f.read().replace("files:\n", "")
    conf = env.write("web-01.yaml", text + RULES % {"log": log})
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag, log, conf


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def by_rule(env, rule):
    return [e for e in env.events() if e["rule"] == rule]


def count_sum(env, rule):
    return sum(e["count"] for e in by_rule(env, rule))


def test_fold_exact(env):
    col, ag, log, _ = start(env)
    append(log, "ERROR code=503 upstream timed out\n" * 10000)
    e2e.wait_for(lambda: count_sum(env, "upstream") >= 10000, 60,
                 "counts summing to 10000", interval=0.5)
    time.sleep(2.5)  # any window still open would add more
    evs = by_rule(env, "upstream")
    total = sum(e["count"] for e in evs)
    e2e.check(total == 10000, "counts sum to %d, not 10000" % total)
    e2e.check(len(evs) < 50, "%d events: folding did not fold" % len(evs))
    e2e.check(all(e["fingerprint"] == "upstream:503" for e in evs),
              repr(evs[:2]))
    e2e.check(evs[0]["count"] == 1, "the first event goes out at once")


def test_fold_survives_kill(env):
    col, ag, log, conf = start(env)
    append(log, "ERROR code=500 boom\n" * 3000)
    # The first event is sent at once; the repeats sit in a durable
    # window, which the kill interrupts.
    e2e.wait_for(lambda: by_rule(env, "upstream"), 30, "the first event")
    time.sleep(0.3)
    ag.kill(signal.SIGKILL)
    append(log, "ERROR code=500 boom\n" * 1000)
    ag.start()
    e2e.wait_for(lambda: count_sum(env, "upstream") >= 4000, 60,
                 "counts summing to 4000", interval=0.5)
    time.sleep(2.5)
    total = count_sum(env, "upstream")
    e2e.check(total == 4000, "counts sum to %d after a SIGKILL, not 4000"
              % total)


def test_rate_limit_summary(env):
    col, ag, log, _ = start(env)
    append(log, "".join("FLOOD %d\n" % i for i in range(100)))
    e2e.wait_for(lambda: any(e["message"].startswith("rate limit")
                             for e in by_rule(env, "flood")), 30,
                 "the rate-limit summary", interval=0.3)
    evs = by_rule(env, "flood")
    sent = [e for e in evs if not e["message"].startswith("rate limit")]
    summ = [e for e in evs if e["message"].startswith("rate limit")]
    e2e.check(len(sent) == 10, "%d events let through, not 10" % len(sent))
    e2e.check(len(summ) == 1, repr(summ))
    s = summ[0]
    e2e.check(s["count"] == 90, "summary count %d, not 90" % s["count"])
    e2e.check(s["message"] ==
              "rate limit: 90 events suppressed in the last 2s (rule flood)",
              s["message"])
    e2e.check(s["severity"] == "warning" and s["kind"] == "log", repr(s))


def test_drop_time_labels(env):
    col, ag, log, _ = start(env)
    append(log, "DEBUG chatter\nDEBUG more\n"
                "2024-03-01T12:00:00.5+01:00 TIMED job finished\n"
                "bad-time TIMED job finished\n")
    evs = e2e.wait_for(lambda: len(env.events()) >= 2 and env.events(), 30,
                       "2 events")
    time.sleep(0.5)
    evs = env.events()
    e2e.check(len(evs) == 2, "drop let lines through: %r" % evs)
    e2e.check(not any("DEBUG" in e["message"] for e in evs), repr(evs))
    t, bad = evs
    e2e.check(t["event_ts"] == (1709294400 - 3600) * 10**9 + 500000000,
              "event_ts %r" % t.get("event_ts"))
    e2e.check(t["event_ts_iso"] == "2024-03-01T11:00:00.500Z", t["event_ts_iso"])
    e2e.check(abs(t["ts"] / 1e9 - time.time()) < 120, "ts is the read time")
    e2e.check(t["labels"] == {"env": "prod", "svc": "api"}, repr(t["labels"]))
    e2e.check("event_ts" not in bad, "a bad time capture gives no event_ts")


def test_test_rules(env):
    col, ag, log, conf = start(env)
    ag.stop()
    sample = env.write("sample.log",
                       "hello\nDEBUG x\nERROR code=404 missing\n"
                       "2024-03-01T12:00:00Z TIMED ok\n")
    rc, out, err = env.run([e2e.AGENT, "test-rules", "-c", conf, sample])
    lines = out.splitlines()
    e2e.check(lines[0] == "1 -", out)
    e2e.check(lines[1] == "2 noise drop", out)
    n, rule, js = lines[2].split(" ", 2)
    ev = json.loads(js)
    e2e.check(rule == "upstream" and ev["fingerprint"] == "upstream:404", out)
    e2e.check(ev["fields"] == {"code": "404"}, out)
    e2e.check(ev["labels"] == {"env": "prod", "svc": "web"}, out)
    ev = json.loads(lines[3].split(" ", 2)[2])
    e2e.check(ev["event_ts_iso"] == "2024-03-01T12:00:00.000000000Z", out)
    e2e.check("# 4 lines, 3 matched, 1 dropped, 2 events" in out, out)
    e2e.check("# rule noise: 1 (drop)" in out, out)
    # Nothing was spooled by it.
    e2e.check(env.events() == [], "test-rules sent events")


if __name__ == "__main__":
    e2e.main([test_fold_exact, test_fold_survives_kill,
              test_rate_limit_summary, test_drop_time_labels,
              test_test_rules])
