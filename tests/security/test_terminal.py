#!/usr/bin/env python3
"""Terminal escape injection (issue 9, item 5).

Attacker: whoever writes a log line the agent tails, names a file in a
tailed directory, or (with a stolen agent certificate, or write access
to the store) puts strings into the collector. Promise: no human-readable
output of tocsinctl or tocsin-agent, and no log line of either daemon,
carries a raw control character (C0 but the line's newline, DEL, C1
raw or UTF-8 encoded) or invalid UTF-8: they are shown escaped (\\x1b,
\\r, \\u009b), so they can neither drive the operator's terminal (OSC 52
writes the clipboard) nor forge an output or log line.

A real agent ships a line with OSC 52, an 8-bit CSI, a UTF-8 encoded
CSI and a carriage return; a rule captures it into the fingerprint.
`tocsin-agent test-rules` replays the file. Then every tocsinctl text
command is run on the result, with hostile --user and
--comment too, and after the store's agent and incident strings are made
hostile directly (what a stolen certificate could send in HELLO).
A file whose name holds a newline and an ESC is tailed: `tocsin-agent
status` and the agent's log show it escaped, on one line."""

import os
import sqlite3
import subprocess

import tocsin_e2e as e2e

OSC52 = b"\x1b]52;c;SGVsbG8=\x07"
HOSTILE_LINE = (b"ALERT " + OSC52 + b" csi8=\x9b" + b"2J csiu=\xc2\x9b" +
                b"31m cr=\rFORGED tail")
# What an argument can carry (no NUL, valid or not as UTF-8).
HOSTILE_ARG = "x\x1b]52;c;SGVsbG8=\x07\r\nFORGED\x1b[2J\u009b1m"


def run_bytes(argv, expect=0):
    p = subprocess.run(argv, capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    e2e.check(expect is None or p.returncode == expect,
              "%r exited %d\nstdout: %r\nstderr: %r"
              % (argv, p.returncode, p.stdout[:2000], p.stderr[:2000]))
    return p.stdout, p.stderr


def assert_clean(what, data):
    """data (bytes) is valid UTF-8 with no control character but \\n."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise e2e.TestFailure("%s: invalid UTF-8 (%s): %r"
                              % (what, ex, data[max(0, ex.start - 40):ex.end + 40]))
    for i, ch in enumerate(text):
        o = ord(ch)
        if (o < 0x20 and ch != "\n") or 0x7f <= o <= 0x9f:
            raise e2e.TestFailure("%s: raw U+%04X at %d: %r"
                                  % (what, o, i, text[max(0, i - 60):i + 60]))
    return text


def ctl_clean(env, *args, expect=0):
    out, err = run_bytes([e2e.CTL, "-c", env.collector_conf] + list(args),
                         expect=expect)
    what = "tocsinctl " + " ".join(a.encode("unicode_escape").decode()
                                   for a in args)
    return assert_clean(what + " (stdout)", out) + \
        assert_clean(what + " (stderr)", err)


def agent_conf(env, log_glob, rules):
    text = ("collector: {address: 127.0.0.1:%d}\n"
            "tls: {ca: pki/ca.crt, cert: pki/web-01.crt, key: pki/web-01.key}\n"
            "state_dir: state/web-01\n"
            "files:\n"
            "  - path: %s\n"
            "    rules:\n" % (env.port, log_glob)) + rules
    return env.write("web-01.yaml", text)


def test_hostile_log_line(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = agent_conf(env, log,
                      "      - name: hostile\n"
                      "        match: '^ALERT (?<what>.*)$'\n"
                      "        severity: critical\n"
                      "        fingerprint: '{rule}:{what}'\n")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    with open(log, "ab") as f:
        f.write(HOSTILE_LINE + b"\n")
    incs = e2e.wait_for(
        lambda: [i for i in env.events() if i["rule"] == "hostile"], 30,
        "the hostile event")
    e2e.check("\x1b]52" in incs[0]["message"], repr(incs[0]))
    inc = e2e.wait_for(
        lambda: __import__("json").loads(
            env.ctl("incidents", "list", "--json")), 30, "the incident")
    iid = str(inc[0]["id"])

    # test-rules on the same file: events as JSON, rule names escaped.
    out, err = run_bytes([e2e.AGENT, "test-rules", "-c", conf, log])
    text = assert_clean("tocsin-agent test-rules", out + err)
    e2e.check("\\u001b]52;c;SGVsbG8=\\u0007" in text, text)

    # Text commands on what the agent shipped.
    out = ctl_clean(env, "incidents", "list")
    e2e.check("hostile" in out, out)
    out = ctl_clean(env, "incidents", "show", iid)
    # The data is there, shown escaped, on one line.
    e2e.check("\\x1b]52;c;SGVsbG8=\\x07" in out, out)
    e2e.check("csi8=\\x9b2J" in out and "csiu=\\u009b31m" in out, out)
    e2e.check("cr=\\rFORGED" in out, out)
    e2e.check(not any(l.startswith("FORGED") for l in out.splitlines()), out)
    out = ctl_clean(env, "events", "list")
    e2e.check("\\x1b]52;c;SGVsbG8=\\x07" in out, out)
    # JSON is escaped by the JSON writer, C1 included.
    for args in (("incidents", "show", iid, "--json"),
                 ("incidents", "list", "--json"),
                 ("events", "list", "--json")):
        ctl_clean(env, *args)

    # Hostile operator-supplied strings: notes, users, comments.
    ctl_clean(env, "incidents", "note", iid, HOSTILE_ARG, "--user",
              HOSTILE_ARG)
    ctl_clean(env, "incidents", "ack", iid, "--user", HOSTILE_ARG,
              "--comment", HOSTILE_ARG)
    ctl_clean(env, "silences", "add", "--match", "rule=hostile",
              "--duration", "1h", "--comment", HOSTILE_ARG, "--user",
              HOSTILE_ARG)
    out = ctl_clean(env, "silences", "list")
    e2e.check("x\\x1b]52;c;SGVsbG8=\\x07\\r\\nFORGED" in out, out)
    out = ctl_clean(env, "incidents", "show", iid)
    e2e.check(out.count("x\\x1b]52;c;SGVsbG8=\\x07") >= 2, out)
    ctl_clean(env, "silences", "list", "--json")
    ctl_clean(env, "agents", "list")
    ctl_clean(env, "stats", "--by", "rule")
    ag.stop()
    col.stop()

    # What a stolen certificate's HELLO or a tampered store can hold.
    db = sqlite3.connect(os.path.join(env.dir, "state", "collector.db"))
    hostile = HOSTILE_LINE.decode("utf-8", "surrogateescape")
    db.execute("UPDATE agents SET software = ?, address = ?",
               (HOSTILE_LINE, HOSTILE_LINE))
    db.execute("UPDATE incidents SET rule = ?, host = ?",
               (HOSTILE_LINE, HOSTILE_LINE))
    db.commit()
    db.close()
    del hostile
    out = ctl_clean(env, "agents", "list")
    e2e.check("\\x1b]52" in out, out)
    ctl_clean(env, "agents", "list", "--json")
    out = ctl_clean(env, "incidents", "list")
    e2e.check("\\x1b]52" in out, out)
    out = ctl_clean(env, "stats", "--by", "rule")
    e2e.check("\\x1b]52" in out, out)
    ctl_clean(env, "stats", "--by", "host", "--json")
    # Replay rebuilds the incidents and diffs the tampered ones.
    out = ctl_clean(env, "replay", expect=None)
    e2e.check("\\x1b]52" in out, out)
    ctl_clean(env, "replay", "--json", expect=None)

    # Neither daemon logged a raw control byte.
    for d in env.daemons:
        with open(d.log_path, "rb") as f:
            assert_clean(d.log_path, f.read())


def test_hostile_problem(env):
    """Problem titles, keys, hosts, evidence, link fields, RCA text and
    notes come from log data or operators: every problems and explain
    text command shows them escaped (issue 11)."""
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    col.stop()
    h = HOSTILE_LINE.decode("utf-8", "surrogateescape").encode(
        "utf-8", "surrogateescape")
    db = sqlite3.connect(os.path.join(env.dir, "state", "collector.db"))
    db.execute("INSERT INTO incidents(id, fingerprint, host, rule, kind,"
               " state, severity, priority, count, first_seen, last_seen,"
               " opened_at, problem, inhibited) VALUES(1, ?, ?, ?, 'log',"
               " 'open', 'error', 3, 1, 1, 1, 1, 1, 1)", (h, h, h))
    db.execute("INSERT INTO problems(id, state, rule, key, title, opened_at,"
               " root_incident, root_host, root_cause, workaround, why1,"
               " known_error_at) VALUES(1, 'open', 'reference', ?, ?, 1, 1,"
               " ?, ?, ?, ?, 2)", (h, h, h, h, h, h))
    db.execute("INSERT INTO problem_factors VALUES(1, 0, 'technology', ?)",
               (h,))
    db.execute("INSERT INTO problem_candidates VALUES(1, 1, ?, 1, 40, ?)",
               (h, h))
    db.execute("INSERT INTO problem_links(incident_id, problem_id, ts,"
               " removed, rule, fields) VALUES(1, 1, 1, 0, 'reference', ?)",
               (h,))
    db.execute("INSERT INTO problem_timeline(problem_id, ts, what, who,"
               " detail) VALUES(1, 1, 'opened', ?, ?)", (h, h))
    db.commit()
    db.close()
    out = ctl_clean(env, "problems", "list")
    e2e.check("\\x1b]52" in out, out)
    out = ctl_clean(env, "problems", "show", "1")
    e2e.check(out.count("\\x1b]52") >= 8, out)
    e2e.check(not any(l.startswith("FORGED") for l in out.splitlines()), out)
    # explain: the engine loaded from these rows names them again. It
    # only reads: the store's bytes are the same after it.
    dbp = os.path.join(env.dir, "state", "collector.db")

    def store_bytes():
        parts = []
        for suffix in ("", "-wal"):
            if os.path.exists(dbp + suffix):
                with open(dbp + suffix, "rb") as f:
                    parts.append(f.read())
        return parts

    before = store_bytes()
    out = ctl_clean(env, "explain", "problem", "1")
    e2e.check(out.count("\\x1b]52") >= 4, out)
    e2e.check(not any(l.startswith("FORGED") for l in out.splitlines()), out)
    out = ctl_clean(env, "explain", "incident", "1")
    e2e.check(out.count("\\x1b]52") >= 3, out)
    e2e.check(not any(l.startswith("FORGED") for l in out.splitlines()), out)
    for args in (("problems", "list", "--json"),
                 ("problems", "show", "1", "--json"),
                 ("explain", "problem", "1", "--json"),
                 ("explain", "incident", "1", "--json"),
                 ("incidents", "list", "--json")):
        ctl_clean(env, *args)
    e2e.check(store_bytes() == before, "explain wrote to the store")
    # Operators' text through the recorded actions.
    col.start()
    e2e.wait_for(lambda: col.log().count("problems not closed") >= 2, 20,
                 "the restart")
    ctl_clean(env, "problems", "note", "1", HOSTILE_ARG, "--user",
              HOSTILE_ARG)
    ctl_clean(env, "problems", "rca", "1", "why2", HOSTILE_ARG)
    out = ctl_clean(env, "problems", "show", "1")
    e2e.check("x\\x1b]52;c;SGVsbG8=\\x07\\r\\nFORGED" in out, out)
    for d in env.daemons:
        with open(d.log_path, "rb") as f:
            assert_clean(d.log_path, f.read())


FORGED = "2026-01-01T00:00:00.000Z tocsin-agent[1]: FORGED"


def test_hostile_file_name(env):
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    logs = os.path.join(env.dir, "logs")
    os.makedirs(logs)
    name = os.path.join(logs, "evil\n" + FORGED + "\x1b[31m\r.log")
    with open(name, "w") as f:
        f.write("boom 1\n")
    conf = agent_conf(env, os.path.join(logs, "*.log"),
                      "      - {name: boom, match: 'boom', severity: error}\n")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    e2e.wait_for(lambda: env.events(), 30, "the event")

    out, err = run_bytes([e2e.AGENT, "status", "-c", conf])
    text = assert_clean("tocsin-agent status", out)
    assert_clean("tocsin-agent status (stderr)", err)
    e2e.check("evil\\n" + FORGED + "\\x1b[31m\\r.log" in text, text)
    e2e.check(not any(l.startswith(FORGED[:24]) for l in text.splitlines()),
              text)
    out, _ = run_bytes([e2e.AGENT, "status", "--json", "-c", conf])
    assert_clean("tocsin-agent status --json", out)
    out = ctl_clean(env, "events", "list")
    e2e.check("evil\\n" not in out or "boom" in out, out)

    ag.stop()
    with open(ag.log_path, "rb") as f:
        logtext = assert_clean(ag.log_path, f.read())
    e2e.check("evil\\n" + FORGED in logtext, "the name is not logged")
    e2e.check(not any(l.startswith(FORGED[:24])
                      for l in logtext.splitlines()), logtext)


e2e.main([test_hostile_log_line, test_hostile_file_name, test_hostile_problem])
