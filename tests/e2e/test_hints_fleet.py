#!/usr/bin/env python3
"""The whole hints path on a fleet (issue 12 item 6): six real agents
(web-01..web-05 and the cache they all use, cache-01), real TLS, the
real collector on a real SQLite file, a runbook directory.

- errors on the five web hosts naming cache-01 make exactly one
  problem (reference, root cause cache-01);
- the runbook for it carries an `auto` action; each host's hint names
  that host's own incident and its parameter is filled from it
  ({host}); cache-01, which reports nothing, gets a hint naming only
  the problem;
- in the middle: cache-01's agent is down while its hint is decided
  (pending), web-03's agent is SIGKILLed while its action runs, and the
  collector restarts once; then everything comes back;
- every action ran exactly once per host (a canary line each), and no
  more after a further restart of every agent and the collector that
  sends every hint again (its ack marks cleared: the agents recognise
  the redeliveries);
- the results are on the timelines: each web incident's, and the
  problem's for cache-01's (web-03's says it was interrupted);
- tocsinctl replay on the store decides the same hints.

Each host's action is a small script that appends "HOST TARGET" to
that host's canary file; web-03's then waits for a release file, so
that the test can kill its agent while it runs."""

import json
import os
import sqlite3
import stat

import tocsin_e2e as e2e

WEBS = ["web-%02d" % i for i in range(1, 6)]
CACHE = "cache-01"
HOSTS = WEBS + [CACHE]
KILLED = "web-03"  # SIGKILLed while its action runs
DOWN = CACHE       # stopped while its hint is decided

RUNBOOK = """---
id: cache-named
title: A cache the web servers name is failing
match: {class: [upstream-down], problem_rule: [reference]}
action:
  name: restart
  params: {target: "{host}"}
---
Restart the service on this host once; the cache comes first.
"""

SCRIPT = """#!/bin/sh
echo "%(host)s $1" >> %(canary)s
%(wait)s
exit 0
"""

# web-03's action blocks until the test releases it (20 s at most).
WAIT = """i=0
while [ ! -e %s ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done"""


def agent_conf(env, host, log):
    canary = os.path.join(env.dir, "canary", host)
    script = env.write("bin/restart-%s.sh" % host, SCRIPT % {
        "host": host, "canary": canary,
        "wait": WAIT % os.path.join(env.dir, "release") if host == KILLED
        else ""})
    os.chmod(script, stat.S_IRWXU)
    extra = ("sender: {backoff_min: 50ms, backoff_max: 300ms}\n"
             "hints: {public_key: pki/hint-signing.pub}\n"
             "actions:\n"
             "  - name: restart\n"
             "    exec: %s\n"
             "    args: ['{target}']\n"
             "    params:\n"
             "      target: {type: hostname}\n"
             "    auto: true\n" % script)
    return env.agent_config(host, [(log, [
        ("upstream-down", r"cache unreachable upstream=(?<upstream>\S+)",
         "error"),
        ("ready", "service ready", "ok")])], extra=extra)


def canary(env, host):
    try:
        with open(os.path.join(env.dir, "canary", host)) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def ctl_json(env, *args):
    return json.loads(env.ctl(*args))


def agent_hints(env, conf):
    _, out, _ = env.run([e2e.AGENT, "hints", "--json", "-c", conf])
    return json.loads(out)


def actions_on(entries):
    return [n for n in entries if n["what"] == "action"]


def test_fleet(env):
    env.make_pki(agents=HOSTS)
    env.write("runbooks/cache-named.md", RUNBOOK)
    os.makedirs(os.path.join(env.dir, "canary"))
    env.collector_config("incidents: {resolve_after: 1h}\n"
                         "runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    logs, confs, agents = {}, {}, {}
    for h in HOSTS:
        logs[h] = env.write("logs/%s.log" % h, "")
        confs[h] = agent_conf(env, h, logs[h])
        agents[h] = env.agent(confs[h]).start()
    for h in HOSTS:
        agents[h].wait_log("connected to")
    # cache-01 must be a known host for its name to count (an event of
    # severity ok: it opens nothing); then its agent stops: its hint
    # will be decided while it is away.
    with open(logs[CACHE], "a") as f:
        f.write("service ready\n")
    e2e.wait_for(lambda: env.events(CACHE), 30, "an event from cache-01")
    agents[DOWN].stop()

    # 1. The five web hosts lose the cache: one problem, cache-01 root.
    for h in WEBS:
        with open(logs[h], "a") as f:
            f.write("cache unreachable upstream=%s:6379\n" % CACHE)

    def one_problem():
        ps = ctl_json(env, "problems", "list", "--json")
        incs = [i for i in ctl_json(env, "incidents", "list", "--json")
                if i.get("problem")]
        return ps if len(incs) == len(WEBS) else None
    probs = e2e.wait_for(one_problem, 30, "the 5 incidents in a problem")
    e2e.check(len(probs) == 1 and probs[0]["rule"] == "reference",
              repr(probs))
    pid = probs[0]["id"]
    e2e.check(probs[0]["root_cause"] == CACHE, "root: %r" % probs)
    incs = {i["host"]: i["id"]
            for i in ctl_json(env, "incidents", "list", "--json")}
    e2e.check(sorted(incs) == WEBS, "incidents: %r" % incs)

    # 2. Web-03's action runs (its canary line is there, it waits for
    # the release): kill its agent now, then let the action finish.
    e2e.wait_for(lambda: canary(env, KILLED), 30, "web-03's action to start")
    agents[KILLED].kill()
    env.write("release", "")

    # Six hints decided: one per host, each about that host's own
    # incident (cache-01's about the problem only), its parameter
    # filled from that host.
    hints = e2e.wait_for(
        lambda: (lambda v: v if len(v) == len(HOSTS) else None)(
            ctl_json(env, "hints", "list", "--json")), 30, "six hints")
    by_agent = {h["agent"]: h for h in hints}
    e2e.check(sorted(by_agent) == sorted(HOSTS), repr(hints))
    for h in HOSTS:
        x = by_agent[h]
        e2e.check(x["problem"] == pid and x["source"] == "runbook:cache-named"
                  and x["action"] == "restart", repr(x))
        e2e.check(x["incident"] == incs.get(h, 0), "%s names incident %r"
                  % (h, x["incident"]))
    e2e.check(by_agent[DOWN]["sent_at"] == 0, "cache-01's hint went out "
              "while its agent was down: %r" % by_agent[DOWN])

    # 3. The collector restarts once; then the stopped and the killed
    # agents come back.
    col.stop()
    mark = len(col.log())
    col.start()
    col.wait_log("listening on", after=mark)
    agents[DOWN].start()
    agents[KILLED].start()

    def all_acked():
        v = ctl_json(env, "hints", "list", "--json")
        return v if all(h["acked_at"] > 0 for h in v) else None
    hints = e2e.wait_for(all_acked, 30, "every hint acked")
    for h in HOSTS:
        mine = [x for x in agent_hints(env, confs[h])]
        e2e.check([x["id"] for x in mine] == [by_agent[h]["id"]],
                  "%s holds %r" % (h, mine))
    e2e.wait_for(lambda: canary(env, DOWN), 30, "cache-01's action")

    # 4. and 5. Each action ran once; each result is on its timeline.
    def incident_actions(h):
        return actions_on(ctl_json(env, "incidents", "show", str(incs[h]),
                                   "--json")["timeline"])

    def problem_actions():
        return actions_on(ctl_json(env, "problems", "show", str(pid),
                                   "--json")["timeline"])

    def results_landed():
        return (all(len(incident_actions(h)) == 1 for h in WEBS) and
                len(problem_actions()) == 1)
    e2e.wait_for(results_landed, 30, "the six results on the timelines")

    def check_once():
        for h in HOSTS:
            e2e.check(canary(env, h) == ["%s %s" % (h, h)],
                      "%s ran %r" % (h, canary(env, h)))
        for h in WEBS:
            got = incident_actions(h)
            e2e.check(len(got) == 1 and got[0]["who"] == "agent:%s" % h
                      and "(hint %d)" % by_agent[h]["id"] in got[0]["detail"],
                      "%s timeline: %r" % (h, got))
        got = problem_actions()
        e2e.check(len(got) == 1 and got[0]["who"] == "agent:%s" % CACHE and
                  "(hint %d)" % by_agent[CACHE]["id"] in got[0]["detail"],
                  "problem timeline: %r" % got)
    check_once()
    e2e.check("interrupted" in incident_actions(KILLED)[0]["detail"],
              repr(incident_actions(KILLED)))
    e2e.check(" exit 0 " in problem_actions()[0]["detail"],
              repr(problem_actions()))
    states = {h: agent_hints(env, confs[h])[0]["state"] for h in HOSTS}
    e2e.check(states == dict((h, "failed" if h == KILLED else "done")
                             for h in HOSTS), repr(states))
    e2e.check("refused" not in col.log(), "a result was refused")

    # A further restart of everything, and the collector made to
    # forget that the hints were acked (as if those marks were lost in
    # a crash): every hint goes again, each agent recognises its
    # redelivery and acks it; nothing runs again, nothing new lands.
    for h in HOSTS:
        agents[h].stop()
    col.stop()
    db = sqlite3.connect(os.path.join(env.dir, "state", "collector.db"))
    with db:
        db.execute("UPDATE hint_delivery SET acked_at = 0")
    db.close()
    mark = len(col.log())
    col.start()
    col.wait_log("listening on", after=mark)
    for h in HOSTS:
        agents[h].start()

    def acked_again():
        v = ctl_json(env, "hints", "list", "--json")
        return all(x["acked_at"] > 0 and x["attempts"] >= 2 for x in v)
    e2e.wait_for(acked_again, 30, "every hint sent and acked again")
    e2e.check(len(ctl_json(env, "hints", "list", "--json")) == len(HOSTS),
              "hints decided again")
    for h in HOSTS:
        e2e.check(len(agent_hints(env, confs[h])) == 1, "%s stored twice" % h)
    check_once()

    rep = ctl_json(env, "replay", "--json")
    e2e.check(rep["identical"] and rep["hints"] == len(HOSTS), repr(rep))
    env.ctl("replay")
    for a in agents.values():
        a.stop()
    col.stop()


if __name__ == "__main__":
    e2e.main([test_fleet])
