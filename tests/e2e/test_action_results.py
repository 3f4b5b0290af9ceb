#!/usr/bin/env python3
"""Action results on the incident timeline (issue 12 item 4), with the
real agent and collector: an incident opens on web-01; a signed hint
naming it and an `auto` action reaches the agent; the action runs and
its `action_result` event, delivered to the collector, is one `action`
entry on that incident's timeline (`tocsinctl incidents show`, text and
--json), with the output's first line escaped, and changes nothing else;
`tocsinctl replay` is identical.

The collector does not send hints yet (issue 12 item 2), so, as in
tests/security/test_hints.py, a fake collector plays its part: the real
one stops, the agent reconnects to the fake on the same port, takes the
hint and runs the action; the fake acks no events, so the result stays
in the agent's spool until the real collector is back."""

import json
import os
import stat
import sys
import time

import tocsin_e2e as e2e

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "security"))
from test_hints import FakeCollector, forge, stored  # noqa: E402

# What the action prints: a terminal escape first, so that the timeline
# must escape it.
ACTION_SCRIPT = """#!/bin/sh
printf '\\033[31m%s restarted %s\\n' "$TOCSIN_CANARY" "$1"
echo second line
"""


def incidents(env):
    return json.loads(env.ctl("incidents", "list", "--json"))


def setup(env, agents=("web-01",), canary="done"):
    """A collector, and web-01 with an auto action `restart` that
    prints `canary` (and more agents with only a log file). Returns
    (col, {name: (agent, conf, log)})."""
    env.make_pki(agents=agents)
    env.collector_config("incidents: {resolve_after: 1h}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    script = env.write("bin/restart.sh",
                       ACTION_SCRIPT.replace("$TOCSIN_CANARY", canary))
    os.chmod(script, stat.S_IRWXU)
    out = {}
    for name in agents:
        log = env.write("logs/%s.log" % name, "")
        extra = ("sender: {backoff_min: 50ms, backoff_max: 500ms}\n"
                 "hints: {public_key: pki/hint-signing.pub}\n")
        if name == "web-01":
            extra += ("actions:\n"
                      "  - name: restart\n"
                      "    exec: %s\n"
                      "    args: ['{unit}']\n"
                      "    params:\n"
                      "      unit: {type: enum, values: [nginx.service]}\n"
                      "    auto: true\n" % script)
        conf = env.agent_config(name, [(log, [("oom", "OOM", "error")])],
                                extra=extra)
        ag = env.agent(conf).start()
        ag.wait_log("connected to")
        out[name] = (ag, conf, log)
    return col, out


def open_incident(env, host, log):
    """An error line on host: its incident's id."""
    with open(log, "a") as f:
        f.write("OOM killer woke up\n")
    inc = e2e.wait_for(lambda: [i for i in incidents(env)
                                if i["host"] == host], 20,
                       "the incident of %s" % host)
    return inc[0]["id"]


def run_hinted_action(env, col, ag, conf, incident, hint_id=1):
    """Stop the collector, hand web-01 a hint naming `incident` with the
    auto action through a fake collector, wait for the run, then bring
    the collector back: the result is delivered to it."""
    key = os.path.join(env.pki, "hint-signing.key")
    col.stop()
    fake = FakeCollector(env)
    fake.accept()
    fake.send(forge(env, agent="web-01", key=key, id=hint_id,
                    incident=incident, title="restart nginx",
                    action="restart", params=["unit=nginx.service"]))
    e2e.check(fake.acks(5) == [hint_id], "hint %d not acked" % hint_id)

    def state():
        return {h["id"]: h["state"] for h in stored(env, conf)}.get(hint_id)
    e2e.wait_for(lambda: state() == "done", 15, "the hinted action to run")
    fake.close()
    before = len(col.log())
    col.start()
    col.wait_log("listening on", after=before)

    def result():
        return [e for e in env.events("web-01")
                if e.get("kind") == "action_result" and
                e.get("fields", {}).get("hint") == str(hint_id)]
    ev = e2e.wait_for(result, 30, "the action_result event at the collector")
    return ev[0]


def show(env, incident):
    text = env.ctl("incidents", "show", str(incident))
    js = json.loads(env.ctl("incidents", "show", str(incident), "--json"))
    return text, js


def test_result_on_timeline(env):
    col, ags = setup(env, canary="nginx")
    ag, conf, log = ags["web-01"]
    iid = open_incident(env, "web-01", log)
    before = [i for i in incidents(env) if i["id"] == iid][0]

    ev = run_hinted_action(env, col, ag, conf, iid)
    e2e.check(ev["fields"].get("incident") == str(iid) and
              ev["fields"].get("exit") == "0", "result event %r" % ev)

    def entries():
        _, js = show(env, iid)
        return [n for n in js["timeline"] if n["what"] == "action"]
    got = e2e.wait_for(entries, 20, "the action entry on the timeline")
    e2e.check(len(got) == 1, "entries %r" % got)
    n = got[0]
    e2e.check(n["who"] == "agent:web-01", "who %r" % n)
    e2e.check(n["detail"].startswith("restart exit 0 in ") and
              n["detail"].endswith(" (hint 1): \\x1b[31mnginx restarted "
                                   "nginx.service"),
              "detail %r" % n["detail"])
    text, js = show(env, iid)
    line = [l for l in text.splitlines() if " action " in l]
    e2e.check(len(line) == 1 and "agent:web-01" in line[0] and
              "restart exit 0 in " in line[0] and "(hint 1): " in line[0],
              "text timeline: %r" % text)
    e2e.check("\x1b" not in text and "\\x1b[31mnginx restarted" in text,
              "escape not escaped: %r" % text)
    # Nothing else changed: still the one open incident, same count.
    after = [i for i in incidents(env) if i["id"] == iid][0]
    e2e.check(after["state"] == "open" and after["count"] == before["count"]
              and len(incidents(env)) == 1,
              "the result changed incidents: %r -> %r" % (before, after))
    out = env.ctl("replay")
    e2e.check("identical" in out, "replay: %r" % out)


if __name__ == "__main__":
    e2e.main([test_result_on_timeline])
