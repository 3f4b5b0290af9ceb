#!/usr/bin/env python3
"""tocsin-agent status and SIGHUP reload with the real daemons.

status: link state, spool depth, per-file offsets, per-check state,
drops by reason, as JSON and as text, over the agent's unix socket.
reload: files, rules and checks are added and removed without losing
offsets or events; a broken file is refused and the old one keeps
running."""

import json
import os
import re
import signal
import subprocess
import time

import tocsin_e2e as e2e


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def status(env, conf, as_json=True):
    argv = [e2e.AGENT, "status", "-c", conf] + (["--json"] if as_json else [])
    _, out, _ = env.run(argv)
    return json.loads(out) if as_json else out


def setup(env, checks=""):
    env.make_pki()
    a = env.write("logs/a.log", "")
    b = env.write("logs/b.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [(a, [("a-err", "ERROR", "error")])],
                            extra="heartbeat: 1s\n" + checks)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag, conf, a, b


def count(env, n, timeout=30):
    return e2e.wait_for(lambda: len(env.events()) >= n and env.events(), timeout,
                        "%d events" % n, interval=0.2)


def test_status_json_and_text(env):
    checks = ("checks:\n  - {name: root-disk, type: disk, path: /, interval: 1s,"
              " timeout: 500ms}\n")
    col, ag, conf, a, b = setup(env, checks)
    append(a, "ERROR one\nfine\nERROR two\n")
    count(env, 2)
    st = e2e.wait_for(lambda: (lambda s: s if s["checks"][0]["state"] != "PENDING"
                               and s["spool"]["depth"] == 0 else None)(status(env, conf)),
                      20, "check result and empty spool")
    e2e.check(st["agent"] == "web-01", repr(st))
    e2e.check(st["link"]["state"] == "connected", repr(st["link"]))
    e2e.check(st["link"]["events_acked"] >= 2, repr(st["link"]))
    files = {f["path"]: f for f in st["files"]}
    e2e.check(a in files and files[a]["offset"] == os.path.getsize(a), repr(st["files"]))
    ck = st["checks"][0]
    e2e.check(ck["name"] == "root-disk" and ck["state"] in ("OK", "WARNING", "CRITICAL"), repr(ck))
    e2e.check(ck["last_run"] > 0 and ck["runs"] >= 1, repr(ck))
    for k in ("spool_full_unreported", "rule_action_drop", "rate_limited", "lines_cut"):
        e2e.check(k in st["drops"], "drops lacks %s: %r" % (k, st["drops"]))
    text = status(env, conf, as_json=False)
    e2e.check("connected" in text and a in text and "root-disk" in text, text)
    # A person reads sizes and durations with units; JSON keeps raw numbers.
    size = os.path.getsize(a)
    e2e.check(re.search(r"^ +size +%d B$" % size, text, re.M), text)
    e2e.check(re.search(r"^ +max_size +\d+(\.\d)? [KMGTPE]iB$", text, re.M), text)
    # tc_fmt_duration: "850ms", "1.3s" below 10 s, "12s", "3m12s", "1h5m".
    e2e.check(re.search(r"^ +uptime +(\d+ms|\d+(\.\d)?s|(\d+[dhm])+(\d+s)?)$", text, re.M),
              text)
    e2e.check(re.search(r"^ +interval +1s$", text, re.M), text)
    e2e.check(re.search(r"^ +duration +(\d+(ns|us|ms|s)|\d\.\ds)$", text, re.M), text)
    e2e.check(not re.search(r"_(ms|us|s|bytes) ", text), text)
    # With the collector down, the link state and the spool depth say so.
    e2e.check(col.stop() == 0, "collector exit")
    append(a, "ERROR three\n")
    st = e2e.wait_for(lambda: (lambda s: s if s["link"]["state"] != "connected"
                               and s["spool"]["depth"] >= 1 else None)(status(env, conf)),
                      20, "link down and one event spooled")
    e2e.check(st["spool"]["oldest_unacked_age_ms"] >= 0, repr(st["spool"]))


def test_status_without_agent(env):
    env.make_pki()
    conf = env.agent_config("web-01", [(env.write("logs/a.log", ""), [])])
    rc, out, err = env.run([e2e.AGENT, "status", "-c", conf], expect=1)
    e2e.check("cannot reach the agent" in err, err)


def test_reload_adds_and_removes_inputs(env):
    col, ag, conf, a, b = setup(env)
    append(a, "ERROR a1\n")
    count(env, 1)
    # Add file b with a rule, a second rule on a, and a check.
    text = open(conf).read()
    text = text.replace("files:\n", "check_defaults: {interval: 1s, timeout: 500ms}\n"
                        "checks:\n  - {name: tmp-age, type: file_age, path: %s}\nfiles:\n" % a)
    text += ("      - {name: a-warn, match: 'WARN', severity: warning}\n"
             "  - path: %s\n    rules:\n      - {name: b-err, match: 'ERROR', severity: error}\n" % b)
    env.write("web-01.yaml", text)
    before = len(ag.log())
    ag.proc.send_signal(signal.SIGHUP)
    ag.wait_log("reload: configuration applied: 2 files, 1 checks", after=before)
    append(a, "WARN a2\nERROR a3\n")
    append(b, "ERROR b1\n")
    evs = count(env, 5)
    msgs = sorted(e["message"] for e in evs if e["kind"] == "log")
    e2e.check(msgs == ["ERROR a1", "ERROR a3", "ERROR b1", "WARN a2"], repr(msgs))
    e2e.check(any(e["kind"] == "check" and e["rule"] == "tmp-age" for e in evs),
              "no check event after reload")

    # A broken file is refused; the old configuration keeps running.
    env.write("web-01.yaml", text + "bogus_key: 1\n")
    before = len(ag.log())
    ag.proc.send_signal(signal.SIGHUP)
    ag.wait_log(r"web-01\.yaml:\d+: unknown key 'bogus_key'", after=before)
    ag.wait_log("keeping the running configuration", after=before)
    append(b, "ERROR b2\n")
    count(env, 6)
    e2e.check(status(env, conf)["reloads_refused"] == 1, "refused reload not counted")

    # Remove file a: its lines are no longer read; b resumes exactly.
    text2 = text.split("files:\n")[0] + "files:\n  - path: %s\n    rules:\n" \
        "      - {name: b-err, match: 'ERROR', severity: error}\n" % b
    env.write("web-01.yaml", text2)
    before = len(ag.log())
    ag.proc.send_signal(signal.SIGHUP)
    ag.wait_log("reload: configuration applied: 1 files", after=before)
    append(a, "ERROR a-ignored\n")
    append(b, "ERROR b3\n")
    evs = count(env, 7)
    time.sleep(1.5)
    logs = [e["message"] for e in env.events() if e["kind"] == "log"]
    e2e.check(sorted(logs) == ["ERROR a1", "ERROR a3", "ERROR b1", "ERROR b2", "ERROR b3",
                               "WARN a2"], repr(logs))
    e2e.check(ag.stop() == 0, "agent exit status")


def test_status_no_match(env):
    """A files[] entry that matches nothing is warned about once in the
    log and shown in status until it matches; once it matched and lost
    its file (read to the end), it is warned about again."""
    env.make_pki()
    env.collector_config()
    missing = os.path.join(env.dir, "logs", "late.log")
    glob_ = os.path.join(env.dir, "nodir", "*.log")
    present = env.write("logs/a.log", "")
    conf = env.agent_config("web-01", [(missing, [("e", "ERROR", "error")]),
                                       (glob_, [("e", "ERROR", "error")]),
                                       (present, [("e", "ERROR", "error")])])
    ag = env.agent(conf).start()
    ag.wait_log(r"files\[0\] %s: matches no file" % missing)
    ag.wait_log(r"files\[1\] .*nodir/\*\.log: matches no file")
    st = status(env, conf)
    ins = st["inputs"]
    e2e.check([i["path"] for i in ins] == [missing, glob_, present], repr(ins))
    e2e.check([(i["matched_files"], i["no_match"]) for i in ins]
              == [(0, True), (0, True), (1, False)], repr(ins))
    text = status(env, conf, as_json=False)
    e2e.check("no_match" in text and missing in text, text)
    # Once, not at every scan.
    time.sleep(1.5)
    e2e.check(len(re.findall(r"files\[0\] .*: matches no file", ag.log())) == 1,
              "warned more than once:\n" + ag.log())
    e2e.check("files[2]" not in ag.log(), "warned about a matching input")

    append(missing, "hello\n")
    e2e.wait_for(lambda: (lambda i: i["matched_files"] == 1 and not i["no_match"])(
        status(env, conf)["inputs"][0]), 20, "files[0] matched")
    ag.wait_log(r"files\[0\] %s: matches 1 file again" % missing)
    # A rotation (rename, then create) is not "matches no file", even
    # when a scan falls between the two.
    os.rename(missing, missing + ".1")
    time.sleep(0.6)
    append(missing, "new\n")
    time.sleep(1.0)
    e2e.check(len(re.findall(r"files\[0\] .*: matches no file", ag.log())) == 1,
              "a rotation warned:\n" + ag.log())
    # Gone: once the file is read to its end and let go, said again.
    os.unlink(missing)
    e2e.wait_for(lambda: status(env, conf)["inputs"][0]["no_match"], 30,
                 "files[0] no_match again")
    e2e.check(len(re.findall(r"files\[0\] .*: matches no file", ag.log())) == 2,
              "not warned again:\n" + ag.log())
    e2e.check(ag.stop() == 0, "agent exit status")


def test_reload_under_load_loses_nothing(env):
    col, ag, conf, a, b = setup(env)
    total = 20000
    sent = 0
    for r in range(5):
        chunk = "".join("ERROR line %06d\n" % i for i in range(sent, sent + total // 5))
        append(a, chunk)
        sent += total // 5
        ag.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
    evs = e2e.wait_for(lambda: (lambda ev: ev if len(ev) >= total else None)(env.events()),
                       120, "%d events" % total, interval=0.5)
    time.sleep(1)
    msgs = [e["message"] for e in sorted(env.events(), key=lambda e: e["seq"])]
    e2e.check(msgs == ["ERROR line %06d" % i for i in range(total)],
              "lost or duplicated across reloads: %d stored" % len(msgs))
    e2e.check(ag.log().count("reload: configuration applied") >= 1, "no reload applied")


if __name__ == "__main__":
    e2e.main([test_status_json_and_text, test_status_without_agent,
              test_reload_adds_and_removes_inputs, test_reload_under_load_loses_nothing,
              test_status_no_match])
