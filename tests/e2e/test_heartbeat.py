#!/usr/bin/env python3
"""Heartbeats and silent agents with the real agent and collector:
`tocsinctl agents list` shows the link state, a stopped (SIGSTOP) agent
yields exactly one critical agent-silent event and one "back" event when
it resumes, and an outage that spans a collector restart is reported
once, not once per collector run.

No assertion is on elapsed time (timings belong in bench/): when an
event comes is judged by the collector's own timestamps (the event's ts,
the agent's last_seen / silent_since) against wall-clock marks taken
around the actions, which only order them."""

import os
import re
import signal
import time

import tocsin_e2e as e2e

HB = 1.0  # the agent's heartbeat, seconds


def start(env):
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [(log, [("app-error", "ERROR", "error")])],
                            extra="heartbeat: 1s\n")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag, log


def agents(env):
    import json
    return {a["name"]: a for a in json.loads(env.ctl("agents", "list", "--json"))}


def silence_events(env):
    """The collector's agent-silent events about web-01, oldest first."""
    return [e for e in env.events("web-01")
            if e["kind"] == "agent" and e["rule"] == "agent-silent"]


def wait_silence(env, n, timeout, what):
    return e2e.wait_for(lambda: len(silence_events(env)) >= n and silence_events(env),
                        timeout, what, interval=0.2)


def test_agents_list(env):
    t0 = time.time_ns()
    col, ag, log = start(env)
    a = e2e.wait_for(lambda: agents(env).get("web-01", {}).get("connected") and
                     agents(env)["web-01"], 10, "web-01 connected in agents list")
    e2e.check(a["software"] == "tocsin-agent 0.1.0" or a["software"].startswith("tocsin-agent "),
              "software: %r" % a)
    e2e.check(a["heartbeat_ms"] == 1000, "heartbeat_ms: %r" % a)
    e2e.check(a["silent"] is False, "silent: %r" % a)
    e2e.check(a["last_seen_iso"].endswith("Z"), "last_seen_iso: %r" % a)
    e2e.check(t0 <= a["last_seen"] <= time.time_ns(),
              "last_seen is not between the start and now: %r" % a)
    e2e.check(a["address"].startswith("127.0.0.1:"), "address: %r" % a)
    for k in ("spool_depth", "spool_bytes", "hwm"):
        e2e.check(isinstance(a.get(k), int), "%s: %r" % (k, a))
    first = a["last_seen"]
    # Heartbeats alone (no events) keep last_seen moving.
    e2e.wait_for(lambda: agents(env)["web-01"]["last_seen"] > first, 10,
                 "last_seen to advance")
    # Events move the hwm shown.
    with open(log, "a") as f:
        f.write("ERROR one\nERROR two\n")
    e2e.wait_for(lambda: agents(env)["web-01"]["hwm"] >= 2, 10, "hwm to reach 2")
    text = env.ctl("agents", "list")
    lines = text.splitlines()
    e2e.check(lines[0].split()[:3] == ["NAME", "CONNECTED", "LAST_SEEN"],
              "table header: %s" % text)
    e2e.check(lines[1].startswith("web-01 ") and " yes " in lines[1], "table row: %s" % text)
    e2e.check(lines[0].index("CONNECTED") == lines[1].index("yes"), "columns not aligned:\n%s" % text)
    # Sizes and periods with units (JSON keeps spool_bytes, heartbeat_ms).
    def right_cell(name):  # a right-aligned cell ends under its header
        end = lines[0].index(name) + len(name)
        return lines[1][:end].split("  ")[-1].strip()
    e2e.check(re.fullmatch(r"\d+ B|\d+(\.\d)? [KMGTPE]iB",
                           right_cell("SPOOL_SIZE")), text)
    e2e.check(re.fullmatch(r"\d+(ms|s)|\d+m\d\ds", right_cell("HEARTBEAT")),
              text)
    e2e.check(not re.search(r" $", text, re.M), "trailing spaces:\n" + text)
    e2e.check(silence_events(env) == [], "a healthy agent was declared silent")

    # An orderly stop is seen as a disconnect.
    e2e.check(ag.stop() == 0, "agent exit status")
    e2e.wait_for(lambda: not agents(env)["web-01"]["connected"], 10, "disconnected in agents list")


def test_sigstop_silent_once_then_back(env):
    col, ag, log = start(env)
    time.sleep(1.5)
    e2e.check(silence_events(env) == [], "silent before the agent stopped")
    # SIGSTOP keeps the TCP connection open but nothing is sent on it.
    t_stop = time.time_ns()
    ag.proc.send_signal(signal.SIGSTOP)
    try:
        evs = wait_silence(env, 1, 30, "an agent-silent event")
        e = evs[0]
        e2e.check(e["severity"] == "critical" and e["source"] == "collector"
                  and e["host"] == "web-01" and e["origin"] == "collector", repr(e))
        e2e.check(e["message"].startswith("agent web-01 silent for ") and
                  "(heartbeat 1s, last seen " in e["message"] and e["message"].endswith("Z)"),
                  repr(e["message"]))
        a = agents(env)["web-01"]
        e2e.check(a["silent"] is True and a["connected"] is True, "agents list while stopped: %r" % a)
        # Declared after the stop, and only once 3 heartbeats were missed
        # since the agent was last heard from (the collector's stamps).
        e2e.check(e["ts"] > t_stop, "silent before the stop: %r" % e)
        e2e.check(e["ts"] - a["silent_since"] >= 3 * HB * 10**9,
                  "silent before 3 missed heartbeats: %r %r" % (e, a))
        # Still silent a while later: still exactly one event.
        time.sleep(3 * HB + 1)
        e2e.check(len(silence_events(env)) == 1, "silent event repeated: %r" % silence_events(env))
    finally:
        t_cont = time.time_ns()
        ag.proc.send_signal(signal.SIGCONT)
    evs = wait_silence(env, 2, 30, "a back event")
    b = evs[1]
    e2e.check(b["severity"] == "ok" and b["message"].startswith("agent web-01 is back after "),
              repr(b))
    e2e.check(b["ts"] >= t_cont and b["ts"] > evs[0]["ts"],
              "back before the agent resumed: %r" % evs)
    time.sleep(3 * HB + 1)
    e2e.check(len(silence_events(env)) == 2, "extra events: %r" % silence_events(env))
    e2e.check(agents(env)["web-01"]["silent"] is False, "still silent after it came back")
    # The agent's own seqs are untouched by the collector's events.
    with open(log, "a") as f:
        f.write("ERROR after\n")
    e2e.wait_for(lambda: any(e["message"] == "ERROR after" for e in env.events("web-01")),
                 10, "the agent's event after the silence")
    mine = [e for e in env.events("web-01") if e["origin"] == "agent"]
    e2e.check([e["seq"] for e in mine] == [1], "agent seqs: %r" % mine)


def test_outage_across_collector_restart(env):
    col, ag, log = start(env)
    time.sleep(1.0)
    ag.kill(signal.SIGKILL)
    wait_silence(env, 1, 10, "an agent-silent event")
    # A collector restart while the agent is still gone must not repeat it.
    e2e.check(col.stop() == 0, "collector exit status")
    col.start()
    col.wait_log("listening on", after=0)
    a = e2e.wait_for(lambda: "web-01" in agents(env) and agents(env)["web-01"], 10, "agents list")
    e2e.check(a["connected"] is False and a["silent"] is True, "after restart: %r" % a)
    time.sleep(3 * HB + 2.5)
    evs = silence_events(env)
    e2e.check(len(evs) == 1, "silence reported %d times for one outage: %r" % (len(evs), evs))
    # The agent comes back: one "back" event, then nothing more.
    t_back = time.time_ns()
    ag.start()
    evs = wait_silence(env, 2, 30, "a back event")
    e2e.check(evs[1]["severity"] == "ok", repr(evs[1]))
    e2e.check(evs[1]["ts"] >= t_back, "back before the agent restarted: %r" % evs)
    time.sleep(3 * HB + 1)
    e2e.check(len(silence_events(env)) == 2, "extra events: %r" % silence_events(env))


def test_restart_gives_grace(env):
    """Killed, then the collector restarts before it noticed: one event,
    after a full grace period from the collector's start."""
    col, ag, log = start(env)
    time.sleep(1.0)
    ag.kill(signal.SIGKILL)
    e2e.check(col.stop() == 0, "collector exit status")
    e2e.check(silence_events(env) == [], "silent before 3 heartbeats")
    last_seen = agents(env)["web-01"]["last_seen"]
    # Longer than 3 heartbeats while nobody listens, so that only the
    # grace period can keep the new run from declaring it at once.
    time.sleep(4)
    t_start = time.time_ns()
    e2e.check(t_start - last_seen > 3 * HB * 10**9,
              "not 3 heartbeats since last seen: %d" % (t_start - last_seen))
    col.start()
    evs = wait_silence(env, 1, 30, "an agent-silent event after the restart")
    e2e.check(evs[0]["ts"] - t_start >= 3 * HB * 10**9,
              "no grace after the restart: %r (collector started after %d)"
              % (evs[0], t_start))
    time.sleep(3 * HB + 1)
    e2e.check(len(silence_events(env)) == 1, "repeated: %r" % silence_events(env))


if __name__ == "__main__":
    e2e.main([test_agents_list, test_sigstop_silent_once_then_back,
              test_outage_across_collector_restart, test_restart_gives_grace])
