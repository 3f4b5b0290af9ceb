#!/usr/bin/env python3
"""Event delivery with the real agent and collector: fields, filters,
spooling while the collector is down and a reinstalled agent. Hostile
frames from a peer with a valid certificate are in
tests/security/test_frames.py."""

import os
import shutil
import time

import tocsin_e2e as e2e


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def start(env, agents=("web-01",), rules=None):
    env.make_pki(agents=agents)
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    rules = rules or [("app-error", "ERROR (?<detail>.*)", "error"),
                      ("app-warn", "WARN", "warning")]
    conf = env.agent_config(agents[0], [(log, rules)])
    ag = env.agent(conf).start()
    return col, ag, log, conf


def wait_count(env, n, timeout=30, host=None):
    return e2e.wait_for(lambda: len(env.events(host)) >= n and env.events(host),
                        timeout, "%d events" % n, interval=0.2)


def test_fields_and_filters(env):
    col, ag, log, _ = start(env)
    ag.wait_log("connected to")
    append(log, "boot ok\nERROR disk full on /var\nnoise\nWARN slow request\n")
    evs = wait_count(env, 2)
    e2e.check(len(evs) == 2, "expected 2 events, got %d" % len(evs))
    e, w = evs
    for k in ("host", "seq", "source", "rule", "severity", "message", "ts"):
        e2e.check(k in e, "event lacks %s: %r" % (k, e))
    e2e.check(e["host"] == "web-01" and e["source"] == log, repr(e))
    e2e.check(e["rule"] == "app-error" and e["severity"] == "error", repr(e))
    e2e.check(e["message"] == "ERROR disk full on /var", repr(e))
    e2e.check(e.get("fields", {}).get("detail") == "disk full on /var", repr(e))
    e2e.check(w["rule"] == "app-warn" and w["severity"] == "warning", repr(w))
    e2e.check(w["seq"] > e["seq"], "seq not increasing")
    e2e.check(abs(e["ts"] / 1e9 - time.time()) < 120, "ts is not now: %r" % e["ts"])
    last = env.ctl("events", "list", "--json", "--limit", "1")
    e2e.check('"WARN slow request"' in last and "disk full" not in last,
              "--limit 1 should keep the newest: %s" % last)
    e2e.check(env.events("db-99") == [], "--host filter let other hosts through")
    text = env.ctl("events", "list")
    e2e.check("ERROR disk full on /var" in text, "text listing: %s" % text)


def test_spools_while_collector_down(env):
    col, ag, log, _ = start(env)
    ag.wait_log("connected to")
    append(log, "ERROR before\n")
    wait_count(env, 1)
    e2e.check(col.stop() == 0, "collector exit status")
    ag.wait_log("link down")
    for i in range(500):
        append(log, "ERROR while down %d\n" % i)
    time.sleep(1.0)
    col.start()
    evs = wait_count(env, 501, timeout=60)
    msgs = [e["message"] for e in evs]
    e2e.check(msgs == ["ERROR before"] + ["ERROR while down %d" % i for i in range(500)],
              "wrong events after the collector came back")


def test_reinstalled_agent_is_not_deduplicated(env):
    col, ag, log, conf = start(env)
    append(log, "ERROR first life\n")
    wait_count(env, 1)
    e2e.check(ag.stop() == 0, "agent exit status")
    # Wipe the agent's state: a reinstall. Its new spool numbers events
    # from 1 again, which the collector has already seen for this name.
    shutil.rmtree(os.path.join(env.dir, "state", "web-01"))
    append(log, "ERROR second life\n")
    ag.start()
    # The file is read again from the start: both lines, as new events.
    evs = wait_count(env, 3)
    msgs = [e["message"] for e in evs]
    e2e.check(msgs == ["ERROR first life", "ERROR first life", "ERROR second life"],
              "reinstalled agent's events: %r" % msgs)
    seqs = [e["seq"] for e in evs]
    e2e.check(len(set(seqs)) == 3, "seqs not unique: %r" % seqs)


if __name__ == "__main__":
    e2e.main([test_fields_and_filters, test_spools_while_collector_down,
              test_reinstalled_agent_is_not_deduplicated])
