#!/usr/bin/env python3
"""Incidents end to end with the real agent and collector: a failing
exec check opens exactly one incident after max_attempts and its
recovery resolves it; a burst of 10,000 matching log lines gives one
incident with count 10,000; human actions land on the timeline with the
user's name; and a collector killed with SIGKILL keeps every
incident's state."""

import json
import os
import signal

import tocsin_e2e as e2e


def incidents(env, *args):
    return json.loads(env.ctl("incidents", "list", "--json", *args))


def of_rule(env, rule):
    return [i for i in incidents(env) if i["rule"] == rule]


def test_incidents(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    code = env.write("check.code", "0\n")
    script = env.write("check.sh", "#!/bin/sh\nexit $(cat %s)\n" % code)
    os.chmod(script, 0o755)
    env.collector_config("incidents: {max_attempts: 3, resolve_after: 1h}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    checks = ("check_defaults: {interval: 1s, timeout: 800ms, resend: 1s}\n"
              "checks:\n"
              "  - {name: app-health, type: exec, command: [/bin/sh, %s]}\n"
              % script)
    conf = env.agent_config("web-01", [(log, [("oom", "OOM", "error")])],
                            extra=checks)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")

    # OK results make no incident.
    e2e.wait_for(lambda: [e for e in env.events() if e["rule"] == "app-health"],
                 20, "the first check result")
    e2e.check(of_rule(env, "app-health") == [], "an incident while OK")

    # CRITICAL: soft for two results, then one hard incident.
    with open(code, "w") as f:
        f.write("2\n")

    def crit_events():
        return [e for e in env.events()
                if e["rule"] == "app-health" and e["state"] == 2]

    e2e.wait_for(lambda: len(crit_events()) >= 1, 20, "a CRITICAL result")
    if len(crit_events()) < 3:
        e2e.check(of_rule(env, "app-health") == [],
                  "incident before max_attempts: %r" % of_rule(env, "app-health"))
    inc = e2e.wait_for(lambda: of_rule(env, "app-health"), 20,
                       "the check incident")
    e2e.check(len(crit_events()) >= 3, "opened after %d results"
              % len(crit_events()))
    e2e.check(len(inc) == 1 and inc[0]["state"] == "open", repr(inc))
    e2e.check(inc[0]["severity"] == "critical" and inc[0]["priority"] == 2,
              repr(inc))
    # More failures fold into it.
    n = len(crit_events())
    e2e.wait_for(lambda: len(crit_events()) >= n + 3, 20, "more failures")
    inc = e2e.wait_for(lambda: [i for i in of_rule(env, "app-health")
                                if i["count"] >= n + 3], 10, "the count")
    e2e.check(len(of_rule(env, "app-health")) == 1,
              "second incident: %r" % of_rule(env, "app-health"))

    # A human acknowledges it: the timeline names them.
    out = env.ctl("incidents", "ack", str(inc[0]["id"]), "--user", "alice")
    e2e.check("ack by alice" in out, out)
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "incidents",
                           "ack", str(inc[0]["id"])], expect=1)
    e2e.check("refused" in err, err)

    # Recovery resolves it.
    with open(code, "w") as f:
        f.write("0\n")
    e2e.wait_for(lambda: of_rule(env, "app-health")[0]["state"] == "resolved",
                 20, "the recovery")
    show = json.loads(env.ctl("incidents", "show", str(inc[0]["id"]), "--json"))
    whats = [(t["what"], t["who"]) for t in show["timeline"]]
    e2e.check(whats[0] == ("opened", "rule:app-health"), repr(whats))
    e2e.check(("acknowledged", "user:alice") in whats, repr(whats))
    e2e.check(whats[-1] == ("resolved", "rule:app-health"), repr(whats))
    e2e.check(show["events"], repr(show))

    # A burst of 10,000 matching lines: one incident, count 10,000.
    with open(log, "a") as f:
        for i in range(10000):
            f.write("OOM killed process %d\n" % i)
    e2e.wait_for(lambda: [i for i in of_rule(env, "oom") if i["count"] == 10000],
                 120, "count 10000 (have %r)" % of_rule(env, "oom"))
    oom = of_rule(env, "oom")
    e2e.check(len(oom) == 1 and oom[0]["state"] == "open", repr(oom))
    e2e.check(oom[0]["priority"] == 3, repr(oom))

    # SIGKILL and restart: every incident's state is kept.
    before = incidents(env)
    e2e.check(before == incidents(env), "incidents still changing")
    col.kill(signal.SIGKILL)
    after_kill = incidents(env)
    e2e.check(before == after_kill, "changed by the kill")
    col.start()
    col.wait_log("incidents: .* not closed", after=0)
    ag.wait_log("connected to", timeout=60)
    e2e.wait_for(lambda: col.log().count("listening on") >= 2, 20, "restart")
    after = incidents(env)
    e2e.check(before == after, "before %r\nafter %r" % (before, after))
    # And it keeps working: one more line folds into the same incident.
    with open(log, "a") as f:
        f.write("OOM again\n")
    e2e.wait_for(lambda: of_rule(env, "oom")[0]["count"] == 10001, 30,
                 "the line after the restart")
    e2e.check(len(of_rule(env, "oom")) == 1, repr(of_rule(env, "oom")))
    ag.stop()


if __name__ == "__main__":
    e2e.main([test_incidents])
