#!/usr/bin/env python3
"""Incidents end to end with the real agent and collector: a failing
exec check opens exactly one incident after max_attempts and its
recovery resolves it; a burst of 10,000 matching log lines gives one
incident with count 10,000; human actions land on the timeline with the
user's name; an incident under a silence is recorded in full and
marked; a collector killed with SIGKILL keeps every incident's state;
and tocsinctl replay rebuilds the same incidents from the stored inputs
and names a tampered one. A check that alternates OK/CRITICAL gives
one flapping incident that stays open while it flaps and resolves once
after it settles. tocsinctl stats keeps an acknowledgement across a
reopen."""

import json
import os
import re
import signal
import sqlite3
import time

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
              "  - {name: app-health, type: exec, command: [/bin/sh, %s],\n"
              "     labels: {service: payments}}\n"
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
    # The incident's events are objects, as events list --json gives them.
    listed = {(e["host"], e["seq"]): e for e in env.events("web-01")}
    for ev in show["events"]:
        e2e.check(isinstance(ev, dict) and ev.get("rule") == "app-health",
                  "incidents show --json event: %r" % (ev,))
        e2e.check(listed.get((ev["host"], ev["seq"])) == ev,
                  "differs from events list: %r" % (ev,))

    # A maintenance window on web-01's oom rule. tocsinctl returns once
    # the collector has applied it, so the burst below comes after it.
    out = env.ctl("silences", "add", "--match", "host=web-01", "--match",
                  "rule=oom", "--duration", "2h", "--comment",
                  "kernel upgrade", "--user", "bob")
    m = re.match(r"silence (\d+): .* by bob$", out.strip())
    e2e.check(m, out)
    sid = int(m.group(1))
    sil = json.loads(env.ctl("silences", "list", "--json"))
    e2e.check(len(sil) == 1 and sil[0]["id"] == sid
              and sil[0]["state"] == "active"
              and sil[0]["matchers"] == "host=web-01 rule=oom"
              and sil[0]["comment"] == "kernel upgrade", repr(sil))
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "silences",
                           "add", "--match", "nohost", "--duration", "1h",
                           "--comment", "x"], expect=2)

    # A burst of 10,000 matching lines: one incident, count 10,000,
    # recorded in full and marked silenced.
    with open(log, "a") as f:
        for i in range(10000):
            f.write("OOM killed process %d\n" % i)
    e2e.wait_for(lambda: [i for i in of_rule(env, "oom") if i["count"] == 10000],
                 120, "count 10000 (have %r)" % of_rule(env, "oom"))
    oom = of_rule(env, "oom")
    e2e.check(len(oom) == 1 and oom[0]["state"] == "open", repr(oom))
    e2e.check(oom[0]["priority"] == 3, repr(oom))
    e2e.check(oom[0]["silenced"] == sid, repr(oom))
    e2e.check(of_rule(env, "app-health")[0]["silenced"] == 0,
              repr(of_rule(env, "app-health")))
    e2e.check([i["rule"] for i in incidents(env, "--silenced")] == ["oom"],
              repr(incidents(env, "--silenced")))
    # The mark is explained: by which silence, and what it means.
    text = env.ctl("incidents", "list")
    e2e.check(re.search(r"^ *%d +P3 .* silenced by #%d until \S+Z$"
                        % (oom[0]["id"], sid), text, re.M), text)
    e2e.check("\nsilenced: notifications suppressed; the incident is still "
              "tracked\n" in text, text)
    e2e.check(re.search(r"^  silence %d: host=web-01 rule=oom, active until "
                        r"\S+Z, by bob \(kernel upgrade\)$" % sid, text, re.M),
              text)
    e2e.check(not re.search(r" $", text, re.M), "trailing spaces:\n" + text)
    e2e.check("silenced by" not in text.split("\n")[1 + [i["rule"] for i in
              incidents(env)].index("app-health")], text)
    s = oom[0]["silence"]
    e2e.check(s["id"] == sid and s["known"] is True and s["state"] == "active"
              and s["matchers"] == "host=web-01 rule=oom" and s["user"] == "bob"
              and s["comment"] == "kernel upgrade" and s["ends_at"] > 0
              and "notifications suppressed" in s["meaning"], repr(s))
    e2e.check(of_rule(env, "app-health")[0]["silence"] is None,
              repr(of_rule(env, "app-health")))
    text = env.ctl("incidents", "show", str(oom[0]["id"]))
    e2e.check(re.search(r"^  silenced +yes: notifications suppressed; the "
                        r"incident is still tracked\n +silence %d: "
                        r"host=web-01 rule=oom, active until" % sid, text, re.M),
              text)

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

    # Replay rebuilds the same incidents from the stored inputs, across
    # the restart, while the collector keeps running.
    out = env.ctl("replay")
    e2e.check(re.search(r"compared [1-9]\d* incidents, [1-9]\d* timeline "
                        r"entries.*: identical$", out.strip()), out)
    rep = json.loads(env.ctl("replay", "--json"))
    e2e.check(rep["identical"] and rep["incidents"] == len(incidents(env))
              and rep["actions"] >= 2 and not rep["differences"], repr(rep))
    # Expiring the silence is an action too: replay stays identical.
    out = env.ctl("silences", "expire", str(sid), "--user", "bob")
    e2e.check("expired by bob" in out, out)
    e2e.check(json.loads(env.ctl("silences", "list", "--json")) == [],
              "still listed")
    sil = json.loads(env.ctl("silences", "list", "--all", "--json"))
    e2e.check(len(sil) == 1 and sil[0]["expired"], repr(sil))
    env.run([e2e.CTL, "-c", env.collector_conf, "silences", "expire",
             str(sid)], expect=1)
    e2e.check(json.loads(env.ctl("replay", "--json"))["identical"],
              "replay after expire")

    # A tampered live row is a difference that names the incident. The
    # check incident is resolved and its check passes: nothing else
    # writes that row meanwhile.
    hid = of_rule(env, "app-health")[0]["id"]
    db = sqlite3.connect(os.path.join(env.dir, "state/collector.db"),
                         timeout=10)
    with db:
        db.execute("UPDATE incidents SET count = count + 7 WHERE id = ?",
                   (hid,))
    db.close()
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "replay"],
                          expect=1)
    e2e.check(re.search(r"^incident %d: count: live \d+, replay \d+$" % hid,
                        out, re.M) and "1 difference" in out, out + err)

    # Response metrics: the check incident was acknowledged and
    # resolved, the log one is open.
    chk = [i for i in incidents(env) if i["id"] == hid][0]
    st = json.loads(env.ctl("stats", "--since", "1d", "--json"))
    g = st["groups"]
    e2e.check(len(g) == 1 and g[0]["key"] == "all" and g[0]["incidents"] == 2
              and g[0]["acknowledged"] == 1 and g[0]["resolved"] == 1, repr(st))
    e2e.check(g[0]["mtta_ms"] == (chk["acked_at"] - chk["opened_at"]) // 10**6,
              "%r %r" % (st, chk))
    e2e.check(g[0]["mttr_ms"] == (chk["resolved_at"] - chk["opened_at"]) // 10**6,
              "%r %r" % (st, chk))
    by = json.loads(env.ctl("stats", "--by", "rule", "--json"))["groups"]
    e2e.check([x["key"] for x in by] == ["app-health", "oom"], repr(by))
    # The check carries label service=payments, the log rule none.
    e2e.check(chk["service"] == "payments", repr(chk))
    by = json.loads(env.ctl("stats", "--by", "service", "--json"))["groups"]
    e2e.check([(x["key"], x["incidents"], x["resolved"]) for x in by]
              == [("(none)", 1, 0), ("payments", 1, 1)], repr(by))
    e2e.check("payments" in env.ctl("stats", "--by", "service"), "no row")
    e2e.check("MTTA" in env.ctl("stats"), "no table")
    # Durations with units, never bare ms: MTTA in its own column.
    text = env.ctl("stats")
    head, row = text.splitlines()[:2]
    mtta = row[:head.index("MTTA") + 4].split()[-1]
    e2e.check(re.fullmatch(r"\d+(ns|us|ms|s)|\d\.\ds|\d+m\d\ds|\d+h\d\dm|\d+d\d+h",
                           mtta), text)
    ag.stop()


def test_reopen_stats(env):
    """ack -> resolve -> reopen keeps the acknowledgement in tocsinctl
    stats (the reopen clears acked_at; stats read it and showed ACKED
    0), and an ack after the reopen counts as a second one."""
    env.make_pki()
    log = env.write("logs/app.log", "")
    code = env.write("check.code", "2\n")
    script = env.write("check.sh", "#!/bin/sh\nexit $(cat %s)\n" % code)
    os.chmod(script, 0o755)
    env.collector_config("incidents: {max_attempts: 1, reopen_window: 1h}\n")
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

    inc = e2e.wait_for(lambda: of_rule(env, "app-health"), 30, "the incident")
    iid = inc[0]["id"]

    def timeline():
        show = json.loads(env.ctl("incidents", "show", str(iid), "--json"))
        return [(t["what"], t["ts"]) for t in show["timeline"]]

    def stats():
        g = json.loads(env.ctl("stats", "--since", "1d", "--json"))["groups"]
        e2e.check(len(g) == 1 and g[0]["key"] == "all", repr(g))
        return g[0]

    def first(what, after):
        return [ts for w, ts in timeline() if w == what and ts >= after][0]

    env.ctl("incidents", "ack", str(iid), "--user", "alice")
    env.ctl("incidents", "resolve", str(iid), "--user", "alice")
    # The check still fails: its next result reopens the incident.
    e2e.wait_for(lambda: [i for i in of_rule(env, "app-health")
                          if i["reopened"] == 1 and i["state"] == "open"],
                 30, "the reopen")
    tl = timeline()
    whats = [w for w, _ in tl]
    e2e.check(whats[:4] == ["opened", "acknowledged", "resolved", "reopened"],
              repr(tl))
    opened, acked, resolved, reopened = [ts for _, ts in tl[:4]]
    g = stats()
    e2e.check(g["incidents"] == 1 and g["openings"] == 2
              and g["acknowledged"] == 1 and g["resolved"] == 1, repr(g))
    e2e.check(g["mtta_ms"] == (acked - opened) // 10**6, repr((g, tl)))
    e2e.check(g["mttr_ms"] == (resolved - opened) // 10**6, repr((g, tl)))
    e2e.check(re.search(r"^all +1 +2 +1 ", env.ctl("stats", "--since", "1d"),
                        re.M), env.ctl("stats", "--since", "1d"))

    # Acknowledged again after the reopen: both acknowledgements count.
    env.ctl("incidents", "ack", str(iid), "--user", "bob")
    acked2 = first("acknowledged", reopened)
    g = stats()
    e2e.check(g["openings"] == 2 and g["acknowledged"] == 2, repr(g))
    e2e.check(g["mtta_ms"] == int(((acked - opened) + (acked2 - reopened))
                                  / 2) // 10**6, repr((g, timeline())))

    # The check recovers: the second resolve counts too, and replay
    # rebuilds the same incident and timeline from the stored inputs.
    with open(code, "w") as f:
        f.write("0\n")
    e2e.wait_for(lambda: of_rule(env, "app-health")[0]["state"] == "resolved",
                 30, "the recovery")
    resolved2 = first("resolved", reopened)
    g = stats()
    e2e.check(g["resolved"] == 2 and g["mttr_ms"] ==
              int(((resolved - opened) + (resolved2 - reopened)) / 2)
              // 10**6, repr((g, timeline())))
    rep = json.loads(env.ctl("replay", "--json"))
    e2e.check(rep["identical"] and not rep["differences"], repr(rep))
    ag.stop()


def test_flapping(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    counter = env.write("flap.count", "0\n")
    settle = os.path.join(env.dir, "flap.settle")
    # CRITICAL, OK, CRITICAL, ... until flap.settle exists, then OK.
    script = env.write("flap.sh", "#!/bin/sh\n"
                       "[ -e %s ] && exit 0\n"
                       "n=$(cat %s)\n"
                       "echo $((n + 1)) > %s\n"
                       "[ $((n %% 2)) -eq 0 ] && exit 2\n"
                       "exit 0\n" % (settle, counter, counter))
    os.chmod(script, 0o755)
    env.collector_config("incidents: {max_attempts: 3, flap_high: 50, "
                         "flap_low: 25}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    checks = ("check_defaults: {interval: 1s, timeout: 800ms, resend: 1s}\n"
              "checks:\n"
              "  - {name: flappy, type: exec, command: [/bin/sh, %s]}\n"
              % script)
    conf = env.agent_config("web-01", [(log, [("oom", "OOM", "error")])],
                            extra=checks)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")

    def results():
        return [e for e in env.events() if e["rule"] == "flappy"]

    # Never 3 failures in a row: only flap detection opens an incident,
    # after 9 changes (50.2% > 50%).
    inc = e2e.wait_for(lambda: of_rule(env, "flappy"), 60,
                       "the flapping incident")
    e2e.check(len(inc) == 1 and inc[0]["flapping"]
              and inc[0]["state"] == "open", repr(inc))
    e2e.check(len(results()) >= 9, "flapping after %d results"
              % len(results()))
    # It goes on flapping: the same incident, open, counting results.
    n = len(results())
    e2e.wait_for(lambda: len(results()) >= n + 6, 30, "more results")
    inc = e2e.wait_for(lambda: [i for i in of_rule(env, "flappy")
                                if i["count"] >= inc[0]["count"] + 4], 10,
                       "the count")
    e2e.check(len(of_rule(env, "flappy")) == 1 and inc[0]["state"] == "open"
              and inc[0]["flapping"] and inc[0]["reopened"] == 0, repr(inc))

    # It settles: flapping stops below 25%, then the OK resolves it.
    with open(settle, "w") as f:
        f.write("\n")
    e2e.wait_for(lambda: of_rule(env, "flappy")[0]["state"] == "resolved",
                 60, "the resolve after settling")
    inc = of_rule(env, "flappy")
    e2e.check(len(inc) == 1 and not inc[0]["flapping"]
              and inc[0]["reopened"] == 0, repr(inc))
    show = json.loads(env.ctl("incidents", "show", str(inc[0]["id"]), "--json"))
    whats = [t["what"] for t in show["timeline"]]
    e2e.check(whats == ["opened", "flapping started", "flapping stopped",
                        "resolved"], repr(whats))
    e2e.check(" flapping" not in env.ctl("incidents", "list"), "still marked")
    e2e.check(json.loads(env.ctl("replay", "--json"))["identical"],
              "replay of the flapping check")
    ag.stop()


def test_loop_lag_stats(env):
    """tocsinctl stats shows the collector's event-loop lag (issue 11
    item 9): the fields are there while it runs; a stall (the collector
    stopped with SIGSTOP for 400 ms) shows in the maximum and the stall
    count and is logged; a bad stats file is refused in words (text) and
    as null (JSON), and the incident figures are still listed."""
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")

    def figures():
        return json.loads(env.ctl("stats", "--json"))["collector"]

    c = e2e.wait_for(lambda: (figures() or {}).get("loop_lag_samples"), 20,
                     "loop lag samples")
    c = figures()
    for k in ("loop_lag_max_ms", "loop_lag_p50_ms", "loop_lag_p99_ms",
              "loop_lag_stalls", "loop_lag_samples", "loop_lag_interval_ms",
              "loop_lag_recent_max_ms", "pid", "started", "updated", "stale"):
        e2e.check(k in c, "%s missing: %r" % (k, c))
    e2e.check(c["pid"] == col.proc.pid and c["stale"] is False
              and c["loop_lag_interval_ms"] == 50, repr(c))
    e2e.check(c["loop_lag_p50_ms"] <= c["loop_lag_p99_ms"]
              <= c["loop_lag_max_ms"], repr(c))
    text = env.ctl("stats")
    e2e.check(re.search(r"^collector \(pid %d\): event loop lag since start: "
                        r"max [\d.]+ ms, p50 [\d.]+ ms, p99 [\d.]+ ms"
                        % col.proc.pid, text, re.M), text)

    # A stall: the loop cannot run while the process is stopped. (A
    # loaded machine may have caused stalls already: count from here.)
    before = figures()["loop_lag_stalls"]
    col.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.4)
    col.proc.send_signal(signal.SIGCONT)
    # Stopped, the loop thread used no CPU: the warning says so.
    col.wait_log(r"event loop stalled \d+ ms \(timer due every 50 ms; the "
                 r"loop thread ran \d+ ms of CPU since the last one\)")
    c = e2e.wait_for(lambda: (lambda f: f if f and f["loop_lag_stalls"] > before
                              and f["loop_lag_max_ms"] >= 300 else None)(
                                  figures()), 20, "the stall counted")
    col.stop()

    # The file is input: a tampered one is refused, the rest still works.
    path = os.path.join(env.dir, "state/collector.db-stats")
    e2e.check(os.path.exists(path), "no stats file")
    with open(path, "w") as f:
        f.write("tocsin-collector-stats 1\npid 1\nloop_lag_max_us -5\n")
    st = json.loads(env.ctl("stats", "--json"))
    e2e.check(st["collector"] is None and st["groups"] == [], repr(st))
    text = env.ctl("stats")
    e2e.check("collector: no live figures" in text
              and "a line is not 'key number'" in text and "GROUP" in text,
              text)
    os.unlink(path)
    e2e.check("not running" in env.ctl("stats"), env.ctl("stats"))


if __name__ == "__main__":
    e2e.main([test_incidents, test_reopen_stats, test_flapping,
              test_loop_lag_stats])
