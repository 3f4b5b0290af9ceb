#!/usr/bin/env python3
"""Agent actions (issue 12 items 4-5), with the real agent and collector.

The allowlisted executables are small scripts in the test directory that
touch a canary file when they run. Every refused request (an action that
is not allowlisted, parameters failing validation, shell metacharacters,
`$(...)`, backticks, `../`, `--foo`, a second run while the first still
runs) must print the reason, have the agent log it, and leave no canary:
nothing ran. A good request runs exactly the argv `actions test` shows,
and its action_result event reaches the collector."""

import json
import os
import re
import stat
import subprocess
import time

import tocsin_e2e as e2e
from test_hints import FakeCollector, forge, stored

CANARY_SCRIPT = """#!/bin/sh
# Records how it was called, then drops the canary.
d=$(dirname "$0")
printf '%s\\n' "$@" > "$d/argv.txt"
env > "$d/env.txt"
echo "ran with $# args"
touch "$d/canary"
"""

HANG_SCRIPT = """#!/bin/sh
# A child in the same process group, then wait: the timeout must stop both.
sleep 300 &
echo $! > "$(dirname "$0")/child"
wait
"""

SLOW_SCRIPT = """#!/bin/sh
d=$(dirname "$0")
touch "$d/slow-run.$$"
echo started
sleep 3
echo done
"""


def script(env, rel, text):
    path = env.write(rel, text)
    os.chmod(path, stat.S_IRWXU)
    return path


def setup(env):
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    bindir = os.path.join(env.dir, "bin")
    canary = script(env, "bin/act.sh", CANARY_SCRIPT)
    slow = script(env, "bin/slow.sh", SLOW_SCRIPT)
    hang = script(env, "bin/hang.sh", HANG_SCRIPT)
    os.makedirs(os.path.join(env.dir, "data/cache"), exist_ok=True)
    extra = (
        "actions:\n"
        "  - name: ping\n"
        "    exec: %s\n"
        "    args: ['--count={count}', '{host}']\n"
        "    params:\n"
        "      count: {type: int, min: 1, max: 5}\n"
        "      host: {type: hostname}\n"
        "    timeout: 10s\n"
        "  - name: clean\n"
        "    exec: %s\n"
        "    args: [clean, '{dir}']\n"
        "    params:\n"
        "      dir: {type: path, prefix: %s/data}\n"
        "  - name: restart\n"
        "    exec: %s\n"
        "    args: [restart, '{unit}']\n"
        "    params:\n"
        "      unit: {type: enum, values: [nginx.service, php-fpm.service]}\n"
        "  - name: slow\n"
        "    exec: %s\n"
        "    timeout: 20s\n"
        "  - name: hang\n"
        "    exec: %s\n"
        "    timeout: 1s\n"
        "  - name: whoami\n"
        "    exec: /usr/bin/id\n"
        "    user: nobody\n"
        % (canary, canary, env.dir, canary, slow, hang))
    conf = env.agent_config("web-01", [], extra=extra)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag, conf, bindir


def canary_path(bindir):
    return os.path.join(bindir, "canary")


def agent_cmd(conf, *args):
    return [e2e.AGENT, "actions"] + list(args[:1]) + ["-c", conf] + list(args[1:])


def refused(env, ag, conf, bindir, verb, name, params, reason, logged=True):
    """`actions VERB NAME params` exits 1 with reason; nothing ran."""
    before = len(ag.log())
    _, out, err = env.run(agent_cmd(conf, verb, name, *params), expect=1)
    e2e.check("refused: " in err and reason in err,
              "%s %s %r: no refusal %r in stderr: %r" %
              (verb, name, params, reason, err))
    e2e.check(not os.path.exists(canary_path(bindir)),
              "%s %s %r: the canary exists: something ran" %
              (verb, name, params))
    if logged:
        ag.wait_log("action refused.*" + re.escape(reason), after=before,
                    timeout=5)


CASES = [
    # (name, params, reason)
    ("rm-rf", ["path=/"], "action 'rm-rf' is not allowlisted"),
    ("ping", ["count=3"], "missing parameter 'host'"),
    ("ping", ["count=3", "host=a", "extra=1"], "unknown parameter 'extra'"),
    ("ping", ["count=9", "host=a"], "out of range [1, 5]"),
    ("ping", ["count=1e3", "host=a"], "not an integer"),
    ("ping", ["count=1", "host=a;rm -rf /"], "shell metacharacter ';'"),
    ("ping", ["count=1", "host=$(touch /tmp/x)"], "shell metacharacter '$'"),
    ("ping", ["count=1", "host=`id`"], "shell metacharacter '`'"),
    ("ping", ["count=1", "host=--foo"], "leading '-'"),
    ("ping", ["count=1", "host=a\nb"], "control character"),
    ("ping", ["count=1", "host=bad_host"], "not a host name"),
    ("ping", ["count=1", "host=" + "a" * 300], "value too long"),
    ("clean", ["dir=../../etc"], "'..' in"),
    ("clean", ["dir=cache/../../../etc"], "'..' in"),
    ("clean", ["dir=/etc/shadow"], "is not under"),
    ("clean", ["dir=-rf"], "leading '-'"),
    ("clean", ["dir=--foo"], "leading '-'"),
    ("clean", ["dir=cache;rm -rf /"], "shell metacharacter ';'"),
    ("restart", ["unit=sshd.service"], "not one of the allowed values"),
    ("restart", ["unit=nginx.service;reboot"], "not one of the allowed values"),
]


def test_refusals(env):
    col, ag, conf, bindir = setup(env)
    for name, params, reason in CASES:
        # The local check (runs nothing, talks to no agent)...
        refused(env, ag, conf, bindir, "test", name, params, reason,
                logged=False)
        # ...and the agent, over its socket.
        refused(env, ag, conf, bindir, "run", name, params, reason)
    e2e.check(ag.alive(), "the agent died")


def test_good_run_and_result_event(env):
    col, ag, conf, bindir = setup(env)
    _, out, _ = env.run(agent_cmd(conf, "list", "--json"))
    acts = {a["name"]: a for a in json.loads(out)}
    e2e.check(sorted(acts) == ["clean", "hang", "ping", "restart", "slow",
                               "whoami"] and
              acts["ping"]["params"]["count"] == {"type": "int", "min": 1,
                                                  "max": 5} and
              acts["ping"]["args"] == ["--count={count}", "{host}"] and
              acts["whoami"]["user"] == "nobody" and
              acts["ping"]["auto"] is False and
              acts["ping"]["timeout_ms"] == 10000, "list --json: %r" % acts)
    _, out, _ = env.run(agent_cmd(conf, "list"))
    e2e.check(out.startswith("NAME") and "count:int[1,5] host:hostname" in out
              and "nginx.service|php-fpm.service" in out, "list: %r" % out)
    _, out, _ = env.run(agent_cmd(conf, "test", "ping", "count=2",
                                  "host=db-01.example"))
    e2e.check("--count=2" in out and "db-01.example" in out,
              "actions test does not show the argv: %r" % out)
    e2e.check(not os.path.exists(canary_path(bindir)), "actions test ran it")
    _, out, _ = env.run(agent_cmd(conf, "run", "ping", "count=2",
                                  "host=db-01.example"))
    e2e.check(out.startswith("exit 0 ") and "ran with 2 args" in out,
              "unexpected run output: %r" % out)
    e2e.check(os.path.exists(canary_path(bindir)), "the action did not run")
    with open(os.path.join(bindir, "argv.txt")) as f:
        argv = f.read().splitlines()
    e2e.check(argv == ["--count=2", "db-01.example"], "argv %r" % argv)
    with open(os.path.join(bindir, "env.txt")) as f:
        envv = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
    e2e.check(envv.get("PATH") == "/usr/sbin:/usr/bin:/sbin:/bin" and
              "TOCSIN_BUILD" not in envv and "HOME" not in envv,
              "environment not clean: %r" % envv)

    def result():
        return [e for e in env.events("web-01")
                if e.get("kind") == "action_result"]
    e2e.wait_for(lambda: result(), 20, "action_result event", interval=0.2)
    ev = result()[0]
    f = ev.get("fields", {})
    e2e.check(f.get("action") == "ping" and f.get("exit") == "0" and
              f.get("signal") == "0" and "ran with 2 args" in f.get("output", "")
              and "duration_ms" in f and f.get("hint") == "0",
              "action_result fields: %r" % ev)
    e2e.check(ev.get("severity") == "info", "severity %r" % ev)
    ag.wait_log(r"action ping \(hint 0\): exit 0")


def test_second_run_refused(env):
    col, ag, conf, bindir = setup(env)
    first = subprocess.Popen(agent_cmd(conf, "run", "slow"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    e2e.wait_for(lambda: any(n.startswith("slow-run.") for n in os.listdir(bindir)),
                 10, "the first run to start")
    before = len(ag.log())
    _, out, err = env.run(agent_cmd(conf, "run", "slow"), expect=1)
    e2e.check("refused: " in err and "already running" in err,
              "second run not refused: %r %r" % (out, err))
    ag.wait_log("action refused.*'slow' is already running", after=before,
                timeout=5)
    out, err = first.communicate(timeout=30)
    e2e.check(first.returncode == 0 and b"exit 0 " in out,
              "first run: %r %r" % (out, err))
    runs = [n for n in os.listdir(bindir) if n.startswith("slow-run.")]
    e2e.check(len(runs) == 1, "slow ran %d times" % len(runs))
    # Done: it may run again.
    env.run(agent_cmd(conf, "run", "slow"))


def test_timeout_kills_group(env):
    """A run past its timeout is stopped: SIGTERM to its group."""
    col, ag, conf, bindir = setup(env)
    t0 = time.monotonic()
    _, out, _ = env.run(agent_cmd(conf, "run", "hang"), expect=1)
    e2e.check("killed by signal 15 (timed out)" in out, "output %r" % out)
    e2e.check(time.monotonic() - t0 < 8, "took too long")
    with open(os.path.join(bindir, "child")) as f:
        child = int(f.read())
    e2e.wait_for(lambda: not os.path.exists("/proc/%d" % child) or
                 open("/proc/%d/stat" % child).read().split()[2] == "Z",
                 5, "the group's sleep to be killed")


def test_runs_as_user(env):
    """user: nobody runs it as nobody, without root's groups."""
    if os.geteuid() != 0:
        print("test_runs_as_user: not root, nothing to check")
        return
    col, ag, conf, bindir = setup(env)
    _, out, _ = env.run(agent_cmd(conf, "run", "whoami"))
    e2e.check("uid=65534(nobody)" in out and "gid=65534" in out and
              "groups=65534" in out and "(root)" not in out,
              "not run as nobody alone: %r" % out)


COUNT_SCRIPT = """#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/runs.txt"
touch "$d/canary"
"""


def hint_setup(env):
    """An agent with hints.public_key and auto actions, talking to a fake
    collector that sends it signed hints (hintforge)."""
    env.make_pki(agents=("web-01",))
    bindir = os.path.join(env.dir, "bin")
    act = script(env, "bin/count.sh", COUNT_SCRIPT)
    slow = script(env, "bin/slow.sh", SLOW_SCRIPT)
    extra = (
        "hints: {public_key: pki/hint-signing.pub}\n"
        "actions:\n"
        "  - name: restart_unit\n"
        "    exec: %s\n"
        "    args: [restart, '{unit}']\n"
        "    params:\n"
        "      unit: {type: enum, values: [nginx.service]}\n"
        "    auto: true\n"
        "  - name: ping\n"
        "    exec: %s\n"
        "    args: ['{host}']\n"
        "    params: {host: {type: hostname}}\n"
        "    auto: true\n"
        "  - name: manual\n"
        "    exec: %s\n"
        "    args: [manual]\n"
        "  - name: slow\n"
        "    exec: %s\n"
        "    auto: true\n" % (act, act, act, slow))
    conf = env.agent_config("web-01", [], extra=extra)
    fake = FakeCollector(env)
    ag = env.agent(conf).start()
    fake.accept()
    ag.wait_log("connected to")
    key = os.path.join(env.pki, "hint-signing.key")
    return fake, ag, conf, bindir, key


def runs(bindir):
    try:
        with open(os.path.join(bindir, "runs.txt")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def state_of(env, conf, hid):
    return {r["id"]: r["state"] for r in stored(env, conf)}.get(hid)


def test_hint_actions(env):
    """Signed hints that name actions: refused unless allowlisted and
    valid (logged, canary absent, state refused); an auto action runs
    once, never again on redelivery; a manual one waits for hints run;
    a hint while the action's previous run still runs is refused."""
    fake, ag, conf, bindir, key = hint_setup(env)
    base = dict(agent="web-01", key=key, incident=34, title="t")

    refusals = [
        (1, dict(action="rm_rf", params=["path=/"]),
         "action 'rm_rf' is not allowlisted"),
        (2, dict(action="ping", params=["host=a;rm -rf /"]),
         "shell metacharacter ';'"),
        (3, dict(action="ping", params=["host=$(touch x)"]),
         "shell metacharacter '$'"),
        (4, dict(action="ping", params=["host=`id`"]),
         "shell metacharacter '`'"),
        (5, dict(action="ping", params=["host=--foo"]), "leading '-'"),
        (6, dict(action="ping", params=["host=../etc"]), "'..' in"),
        (7, dict(action="restart_unit", params=["unit=sshd.service"]),
         "not one of the allowed values"),
        (8, dict(action="ping", params=["host=a", "extra=1"]),
         "unknown parameter 'extra'"),
    ]
    for hid, kw, why in refusals:
        before = len(ag.log())
        fake.send(forge(env, id=hid, **dict(base, **kw)))
        e2e.check(fake.acks(2) == [hid], "hint %d not acked" % hid)
        ag.wait_log(r"action refused \(hint %d\): .*" % hid + re.escape(why),
                    after=before, timeout=5)
        e2e.check(not os.path.exists(canary_path(bindir)),
                  "hint %d: the canary exists" % hid)
        e2e.check(state_of(env, conf, hid) == "refused",
                  "hint %d: state %r" % (hid, state_of(env, conf, hid)))

    # Auto and valid: runs once; its redelivery is acked, not run again.
    good = dict(base, id=20, action="restart_unit",
                params=["unit=nginx.service"])
    fake.send(forge(env, **good))
    e2e.check(fake.acks(2) == [20], "hint 20 not acked")
    e2e.wait_for(lambda: state_of(env, conf, 20) == "done", 10,
                 "hint 20 done")
    e2e.check(runs(bindir) == ["restart nginx.service"], "runs %r" % runs(bindir))
    fake.send(forge(env, **good))
    e2e.check(fake.acks(2) == [20], "redelivery not acked")
    time.sleep(1)
    e2e.check(runs(bindir) == ["restart nginx.service"],
              "redelivery ran it again: %r" % runs(bindir))
    ag.wait_log(r"action restart_unit \(hint 20\): exit 0")

    # Not auto: stored and shown, run by a person.
    fake.send(forge(env, **dict(base, id=21, action="manual")))
    e2e.check(fake.acks(2) == [21], "hint 21 not acked")
    time.sleep(0.5)
    e2e.check(state_of(env, conf, 21) == "new" and len(runs(bindir)) == 1,
              "a manual action ran by itself")
    _, out, _ = env.run([e2e.AGENT, "hints", "run", "21", "-c", conf])
    e2e.check(out.startswith("exit 0 "), "hints run: %r" % out)
    e2e.check(runs(bindir)[-1] == "manual" and
              state_of(env, conf, 21) == "done", "hints run did not run it")
    # hints run on a hint whose action is refused: the reason, exit 1.
    _, _, err = env.run([e2e.AGENT, "hints", "run", "2", "-c", conf],
                        expect=1)
    e2e.check("refused: " in err and "shell metacharacter" in err,
              "hints run 2: %r" % err)
    env.run([e2e.AGENT, "hints", "run", "999", "-c", conf], expect=1)

    # A hint while the action's previous run still runs: refused.
    fake.send(forge(env, **dict(base, id=30, action="slow")))
    e2e.check(fake.acks(2) == [30], "hint 30 not acked")
    e2e.wait_for(lambda: any(n.startswith("slow-run.")
                             for n in os.listdir(bindir)), 10, "slow started")
    before = len(ag.log())
    fake.send(forge(env, **dict(base, id=31, action="slow")))
    e2e.check(fake.acks(2) == [31], "hint 31 not acked")
    ag.wait_log(r"action refused \(hint 31\): action 'slow' is already "
                r"running", after=before, timeout=5)
    e2e.check(state_of(env, conf, 31) == "refused", "hint 31 not refused")
    e2e.wait_for(lambda: state_of(env, conf, 30) == "done", 15, "hint 30 done")
    e2e.check(len([n for n in os.listdir(bindir)
                   if n.startswith("slow-run.")]) == 1, "slow ran twice")
    e2e.check(ag.alive(), "the agent died")


def test_hint_running_at_crash_not_rerun(env):
    """SIGKILL while an auto action runs: after the restart the hint is
    marked failed and its action is not run a second time."""
    fake, ag, conf, bindir, key = hint_setup(env)
    fake.send(forge(env, agent="web-01", key=key, id=40, incident=1,
                    title="t", action="slow"))
    e2e.check(fake.acks(2) == [40], "hint 40 not acked")
    e2e.wait_for(lambda: any(n.startswith("slow-run.")
                             for n in os.listdir(bindir)), 10, "slow started")
    ag.kill()
    time.sleep(3.5)  # the orphaned script finishes meanwhile
    ag.start()
    fake.accept()
    ag.wait_log(r"hint 40: its action was running when the agent stopped; "
                r"marked failed, not run again")
    e2e.check(state_of(env, conf, 40) == "failed", "state %r"
              % state_of(env, conf, 40))
    time.sleep(1)
    e2e.check(len([n for n in os.listdir(bindir)
                   if n.startswith("slow-run.")]) == 1, "run again")


def test_result_for_foreign_incident(env):
    """An agent may report on its own host's incidents only: a result
    naming web-02's incident, sent by web-01 (a signed hint for web-01
    that names it, the action allowlisted and run), is stored as
    web-01's event, refused by the collector with a logged reason, and
    its output (a canary) is on no timeline."""
    from test_action_results import (incidents, open_incident,
                                      run_hinted_action, show)
    from test_action_results import setup as result_setup

    canary = "CANARY-d41d8cd9"
    col, ags = result_setup(env, agents=("web-01", "web-02"), canary=canary)
    theirs = open_incident(env, "web-02", ags["web-02"][2])
    ours = open_incident(env, "web-01", ags["web-01"][2])
    ags["web-02"][0].stop()  # the fake collector must meet web-01
    ag, conf, _ = ags["web-01"]
    ev = run_hinted_action(env, col, ag, conf, theirs)
    e2e.check(ev["fields"].get("incident") == str(theirs) and
              canary in ev["fields"].get("output", ""),
              "the result event: %r" % ev)
    col.wait_log(r"agent web-01 sent an action result for incident %d of "
                 r"host web-02: refused" % theirs)
    # The step that refused it has run: nothing on any timeline.
    for iid in (theirs, ours):
        text, js = show(env, iid)
        e2e.check(canary not in text and canary not in json.dumps(js),
                  "incident %d: the canary is on its timeline" % iid)
        e2e.check(not [n for n in js["timeline"] if n["what"] == "action"],
                  "incident %d: an action entry %r" % (iid, js["timeline"]))
    e2e.check(sorted(i["id"] for i in incidents(env)) == sorted([ours, theirs])
              and all(i["state"] == "open" for i in incidents(env)),
              "incidents changed: %r" % incidents(env))
    out = env.ctl("replay")
    e2e.check("identical" in out, "replay: %r" % out)


if __name__ == "__main__":
    e2e.main([
        test_refusals,
        test_good_run_and_result_event,
        test_second_run_refused,
        test_timeout_kills_group,
        test_runs_as_user,
        test_hint_actions,
        test_hint_running_at_crash_not_rerun,
        test_result_for_foreign_incident,
    ])
