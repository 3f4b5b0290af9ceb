#!/usr/bin/env python3
"""Hostile runbook files (issue 12 item 1; docs/security.md, "Runbook
files").

Attacker: whoever can put a file into the runbook directory without
being the collector admin (a shared knowledge-base checkout, a careless
sync job), or a collector admin's own mistake. Promise: a runbook file
is read only if it is a regular file in the directory itself, not
world-writable and at most 256 KiB; its front matter may not use YAML
anchors or aliases (no alias bomb), nest deeper than 32 levels, hold a
NUL byte or put control characters into a title or a parameter. Each
refusal is logged with the file's path (and line), the file is skipped,
the others load, and nothing waits on a FIFO or follows a symbolic link
(to /etc/shadow, say). Whatever a file name or title holds,
`tocsinctl runbooks list` and the collector's log show it escaped."""

import json
import os
import subprocess

import tocsin_e2e as e2e

GOOD = """---
title: Fine
match: {class: disk-full}
---
steps
"""

BOMB = "---\ntitle: B\nmatch: {class: a}\n" + "".join(
    "l%d: &l%d [%s]\n" % (i, i, ",".join(["*l%d" % (i - 1)] * 9) if i else "x")
    for i in range(10)) + "---\n"
DEEP = "---\ntitle: D\nmatch: {class: a}\nlinks: " + "[" * 5000 + "\n---\n"
ESC_TITLE = "---\ntitle: \"pwn\\x1b]52;c;SGVsbG8=\\x07\"\nmatch: {class: a}\n---\n"
C1_TITLE = "---\ntitle: \"csi\\u009b2J end\"\nmatch: {class: c1}\n---\n"
BAD_PARAM = ("---\ntitle: P\nmatch: {class: a}\n"
             "action: {name: run, params: {cmd: \"x\\ny\"}}\n---\n")
HOSTILE_NAME = "evil\x1b]52;c;SGVsbG8=\x07\rFORGED.md"


def run_bytes(argv, expect=0, timeout=60):
    p = subprocess.run(argv, capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    e2e.check(expect is None or p.returncode == expect,
              "%r exited %d\nstdout: %r\nstderr: %r"
              % (argv, p.returncode, p.stdout[:2000], p.stderr[:2000]))
    return p.stdout, p.stderr


def assert_clean(what, data):
    """data (bytes) is valid UTF-8 with no control character but \\n."""
    text = data.decode("utf-8")
    for i, ch in enumerate(text):
        o = ord(ch)
        if (o < 0x20 and ch != "\n") or 0x7f <= o <= 0x9f:
            raise e2e.TestFailure("%s: raw U+%04X at %d: %r"
                                  % (what, o, i, text[max(0, i - 60):i + 60]))
    return text


def populate(env):
    d = os.path.join(env.dir, "runbooks")
    os.makedirs(d)
    env.write("runbooks/good.md", GOOD)
    os.symlink("/etc/shadow", os.path.join(d, "shadow.md"))
    # A link to a valid runbook elsewhere is refused as well.
    outside = env.write("elsewhere/linked.md", GOOD.replace("Fine", "Linked"))
    os.symlink(outside, os.path.join(d, "linked.md"))
    os.mkfifo(os.path.join(d, "fifo.md"))
    env.write("runbooks/big.md", GOOD + "x" * (300 * 1024))
    with open(os.path.join(d, "sparse.md"), "wb") as f:
        f.truncate(1 << 30)  # 1 GiB, never read
    env.write("runbooks/bomb.md", BOMB)
    env.write("runbooks/deep.md", DEEP)
    env.write("runbooks/esc-title.md", ESC_TITLE)
    env.write("runbooks/c1-title.md", C1_TITLE)
    env.write("runbooks/bad-param.md", BAD_PARAM)
    env.write("runbooks/open.md", GOOD.replace("Fine", "Open"))
    os.chmod(os.path.join(d, "open.md"), 0o666)
    with open(os.path.join(d.encode(), HOSTILE_NAME.encode()), "w") as f:
        f.write(GOOD.replace("---\ntitle: Fine", "---\nid: named\ntitle: Named"))
    with open(os.path.join(d.encode(), b"bad\x1b[2J.md"), "w") as f:
        f.write("no front matter\n")


EXPECT = [
    ("shadow.md", "a symbolic link, refused"),
    ("linked.md", "a symbolic link, refused"),
    ("fifo.md", "a FIFO, refused"),
    ("big.md", "bytes, refused: at most 262144"),
    ("sparse.md", "1073741824 bytes, refused"),
    ("bomb.md:4: anchor", "anchors and aliases are not supported"),
    ("deep.md:4: nesting deeper than 32 levels", ""),
    ("esc-title.md:2: title: control character 0x1b", ""),
    ("bad-param.md:4: action.params.cmd", "control character"),
    ("open.md", "writable by every user"),
    ("bad\\x1b[2J.md:1: no front matter", ""),
]


def test_hostile_files(env):
    env.make_pki(agents=())
    populate(env)
    conf = env.collector_config("runbooks: {dir: runbooks}\n")

    out, err = run_bytes([e2e.CTL, "-c", conf, "runbooks", "list"])
    text = assert_clean("runbooks list", out)
    log = assert_clean("runbooks list stderr", err)
    for name, why in EXPECT:
        e2e.check(name in text and why in text, "%s / %s not in:\n%s"
                  % (name, why, text))
        e2e.check(name in log and why in log, "%s / %s not in log:\n%s"
                  % (name, why, log))
    e2e.check("root:" not in text and "root:" not in log, "shadow leaked")
    # Loaded: good, c1-title (escaped when shown) and the hostile name.
    e2e.check("Fine" in text and "csi\\u009b2J end" in text, text)
    e2e.check("evil\\x1b]52;c;SGVsbG8=\\x07\\rFORGED.md" in text, text)
    e2e.check("Linked" not in text and "Open" not in text, text)

    out, _ = run_bytes([e2e.CTL, "-c", conf, "runbooks", "list", "--json"])
    got = json.loads(out.decode("utf-8"))
    ids = sorted(r["id"] for r in got["runbooks"])
    e2e.check(len(ids) == 3 and "good" in ids and "c1-title" in ids, repr(ids))
    e2e.check(len(got["skipped"]) == len(EXPECT), repr(got["skipped"]))
    e2e.check(b"\x1b" not in out and b"\x9b" not in out, repr(out[:500]))

    # -n reports them all and fails; start-up skips them and runs.
    _, err = run_bytes([e2e.COLLECTOR, "-n", "-c", conf], expect=1)
    assert_clean("collector -n", err)
    e2e.check(b"files skipped" in err, err)
    col = env.collector().start()
    col.wait_log("listening on")
    col.wait_log(r"runbooks: 3 loaded from \S+, %d skipped" % len(EXPECT))
    assert_clean("collector log", col.log().encode())


if __name__ == "__main__":
    e2e.main([test_hostile_files])
