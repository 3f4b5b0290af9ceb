#!/usr/bin/env python3
"""Hints the agent must refuse (docs/security.md, "A collector, or
whoever speaks for it"; issue 12 item 5): unsigned, signed by another key,
addressed to another agent, a replayed id with other content, over the
limits, and any hint at all when no public key is configured. Each is
refused with a logged reason, nothing is stored (tocsin-agent hints
--json) and nothing is acked: the agent answers a HINT_ACK that says
"refused" with the reason (docs/protocol.md), except for a hint over the
limits, which is a protocol error. A good hint is stored and acked once;
its redelivery is acked again and still one row.

The collector does not send hints yet, so a fake collector (TLS with the
test PKI, WELCOME, then frames written by tests/tools/hintforge) plays
its part."""

import json
import os
import socket
import ssl
import struct
import subprocess
import time

import tocsin_e2e as e2e
from tocsin_e2e import frame, mp

FORGE = os.path.join(e2e.BUILD, "tests", "tools", "hintforge")


def forge(env, **kw):
    """One HINT frame from hintforge; kw: option=value (params: list)."""
    argv = [FORGE]
    for k, v in kw.items():
        if k == "params":
            for p in v:
                argv += ["--param", p]
        else:
            argv += ["--" + k.replace("_", "-"), str(v)]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    e2e.check(p.returncode == 0 and
              not any(m in err for m in e2e.SANITIZER_MARKS),
              "hintforge: %s" % err)
    return p.stdout


def parse_uint(b, i):
    t = b[i]
    if t < 0x80:
        return t
    n = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
    return int.from_bytes(b[i + 1:i + 1 + n], "big")


def uint_end(b, i):
    """The offset just past the msgpack uint at b[i]."""
    return i + 1 + {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}.get(b[i], 0)


def parse_str(b, i):
    """The msgpack str at b[i] (fixstr, str8, str16)."""
    t = b[i]
    if 0xa0 <= t <= 0xbf:
        n, i = t - 0xa0, i + 1
    elif t == 0xd9:
        n, i = b[i + 1], i + 2
    else:
        n, i = int.from_bytes(b[i + 1:i + 3], "big"), i + 3
    return b[i:i + n].decode("utf-8", "replace")


class FakeCollector:
    """A TLS listener on env.port that speaks just enough protocol."""

    def __init__(self, env):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(os.path.join(env.pki, "collector.crt"),
                                 os.path.join(env.pki, "collector.key"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(os.path.join(env.pki, "ca.crt"))
        self.lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lst.bind(("127.0.0.1", env.port))
        self.lst.listen(4)
        self.lst.settimeout(60)
        self.s = None
        self.buf = b""
        self.refused = []  # (id, reason) of HINT_ACKs that say refused
        env.cleanups.append(self.close)

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None
        self.lst.close()

    def accept(self):
        """Take the agent's next connection: HELLO in, WELCOME out."""
        if self.s is not None:
            self.s.close()
        raw, _ = self.lst.accept()
        self.s = self.ctx.wrap_socket(raw, server_side=True)
        self.buf = b""
        body = self.next_frame(10)
        e2e.check(body is not None and body[1] == 1, "no HELLO: %r" % body)
        self.s.sendall(frame(mp([2, {"v": 1, "collector": "fake", "hwm": 0,
                                     "known": False}])))

    def next_frame(self, timeout):
        """The next frame body from the agent, or None (closed, timeout)."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return body
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                return None
            if not d:
                return None
            self.buf += d

    def send(self, data):
        self.s.sendall(data)

    def acks(self, timeout):
        """HINT_ACK ids the agent sends within timeout seconds (PINGs
        answered, EVENTS ignored); stops early at a BYE or close. A
        HINT_ACK that says refused goes to self.refused instead."""
        got = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            body = self.next_frame(end - time.monotonic())
            if body is None:
                break
            if body[1] == 6 and body[2] == 0x82:
                # [6, {"id": N, "refused": R}]: 92 06 82 a2 'id' N a7 ...
                i = uint_end(body, 6)
                e2e.check(body[i:i + 8] == b"\xa7refused", repr(body))
                self.refused.append((parse_uint(body, 6),
                                     parse_str(body, i + 8)))
            elif body[1] == 6:  # [6, {"id": N}]: 92 06 81 a2 'id' N
                got.append(parse_uint(body, 6))
            elif body[1] == 7:  # [7, {"ts": T, ...}]: 92 07 8N a2 'ts' T
                self.send(frame(mp([8, {"ts": parse_uint(body, 6)}])))
            elif body[1] == 9:
                break
        return got


def agent_conf(env, name="web-01", key=True):
    log = env.write("logs/app.log", "")
    extra = "hints: {public_key: pki/hint-signing.pub}\n" if key else ""
    return env.agent_config(name, [(log, [("err", "ERROR", "error")])],
                            extra=extra)


def start_agent(env, conf):
    d = e2e.Daemon(env, "agent-web-01", [e2e.AGENT, "-d", "-v", "-c", conf])
    env.daemons.append(d)
    return d.start()


def stored(env, conf):
    _, out, _ = env.run([e2e.AGENT, "hints", "--json", "-c", conf])
    return json.loads(out)


def test_hint_refusals(env):
    env.make_pki(agents=("web-01",))
    # Another deployment's hint-signing key.
    other = os.path.join(env.dir, "other")
    env.run([e2e.CTL, "pki", "init", other])
    key = os.path.join(env.pki, "hint-signing.key")
    conf = agent_conf(env)
    fake = FakeCollector(env)
    ag = start_agent(env, conf)
    fake.accept()
    ag.wait_log("connected to")

    good = dict(agent="web-01", id=10, key=key, incident=34, problem=7,
                source="runbook:nginx", title="Restart nginx \x1b]52;c;x\x07",
                text="1. check\n2. restart", action="restart_unit",
                params=["unit=nginx.service", "mode=soft"])
    cases = [
        ("unsigned", dict(good, id=1, key=None), r"hint 1 refused: unsigned",
         "unsigned"),
        ("another key", dict(good, id=2, key=os.path.join(other, "hint-signing.key")),
         r"hint 2 refused: bad signature", "bad signature"),
        ("another agent", dict(good, id=3, agent="db-01"),
         r'hint 3 refused: addressed to agent "db-01", not to this agent',
         "addressed to another agent"),
    ]
    for name, kw, why, said in cases:
        kw = {k: v for k, v in kw.items() if v is not None}
        before = len(ag.log())
        fake.refused = []
        fake.send(forge(env, **kw))
        ag.wait_log(why, after=before)
        e2e.check(fake.acks(1) == [], "%s: acked" % name)
        e2e.check(fake.refused == [(kw["id"], said)],
                  "%s: refusal: %r" % (name, fake.refused))
        e2e.check(stored(env, conf) == [], "%s: stored" % name)

    # A good hint: stored, acked once, logged with its title escaped.
    fake.send(forge(env, **good))
    e2e.check(fake.acks(3) == [10], "good hint not acked once")
    ag.wait_log(r"hint 10 for incident 34: Restart nginx \\x1b\]52;c;x\\x07")
    rows = stored(env, conf)
    # Its action is in no allowlist here: refused on arrival, and logged
    # (test_actions.py::test_hint_actions); the hint itself is kept.
    ag.wait_log(r"action refused \(hint 10\): action 'restart_unit' is not "
                r"allowlisted")
    rows = stored(env, conf)
    e2e.check(len(rows) == 1 and rows[0]["id"] == 10 and rows[0]["state"] == "refused"
              and rows[0]["params"] == {"unit": "nginx.service", "mode": "soft"}
              and rows[0]["problem"] == 7 and rows[0]["incident"] == "34",
              "stored: %r" % rows)

    # Redelivered as it was: acked again, one row.
    before = len(ag.log())
    fake.send(forge(env, **good))
    e2e.check(fake.acks(3) == [10], "redelivery not acked again")
    ag.wait_log(r"hint 10 for incident 34 redelivered; acked again", after=before)
    e2e.check(len(stored(env, conf)) == 1, "redelivery stored twice")

    # The same id with other content, properly signed: refused.
    before = len(ag.log())
    fake.refused = []
    fake.send(forge(env, **dict(good, title="Run something else")))
    ag.wait_log(r"hint 10 refused: replayed hint id", after=before)
    e2e.check(fake.acks(1) == [], "replayed id acked")
    e2e.check(fake.refused == [(10, "replayed hint id (stored already with "
                                    "other content)")],
              "replayed id: refusal: %r" % fake.refused)
    rows = stored(env, conf)
    e2e.check(len(rows) == 1 and rows[0]["title"].startswith("Restart nginx"),
              "replay changed the row: %r" % rows)

    # Over the limits: a protocol error, the agent says BYE and reconnects.
    before = len(ag.log())
    fake.refused = []
    fake.send(forge(env, **dict(good, id=11, title="x" * 600)))
    ag.wait_log(r"bad frame: hint title over 512 bytes", after=before)
    e2e.check(fake.acks(3) == [] and fake.refused == [],
              "oversize hint acked: %r" % fake.refused)
    fake.accept()  # the agent comes back
    e2e.check([r["id"] for r in stored(env, conf)] == [10], "oversize stored")

    # A person's view: escaped, with the action and body.
    _, out, _ = env.run([e2e.AGENT, "hints", "show", "10", "-c", conf])
    e2e.check("\x1b" not in out and "\\x1b]52" in out, "show not escaped: %r" % out)
    e2e.check("unit=nginx.service" in out and "  2. restart" in out,
              "show: %r" % out)
    env.run([e2e.AGENT, "hints", "show", "11", "-c", conf], expect=1)
    _, out, _ = env.run([e2e.AGENT, "hints", "-c", conf])
    e2e.check("\x1b" not in out and "Restart nginx" in out and "restart_unit" in out,
              "list: %r" % out)
    env.run([e2e.AGENT, "hints", "show", "-c", conf], expect=2)
    env.run([e2e.AGENT, "hints", "show", "x1", "-c", conf], expect=2)
    e2e.check(ag.alive(), "agent died")


def test_no_public_key_refuses_all(env):
    env.make_pki(agents=("web-01",))
    key = os.path.join(env.pki, "hint-signing.key")
    conf = agent_conf(env, key=False)
    fake = FakeCollector(env)
    ag = start_agent(env, conf)
    fake.accept()
    ag.wait_log("connected to")
    fake.send(forge(env, agent="web-01", id=1, key=key) +
              forge(env, agent="web-01", id=2, key=key))
    ag.wait_log(r"hint 2 refused: no hints.public_key")
    e2e.check(fake.acks(2) == [], "acked without a key")
    e2e.check(fake.refused == [(1, "no hints.public_key"),
                               (2, "no hints.public_key")],
              "refusals: %r" % fake.refused)
    said = [l for l in ag.log().splitlines()
            if "no hints.public_key in" in l]
    e2e.check(len(said) == 1, "not said once: %r" % said)
    e2e.check(stored(env, conf) == [], "stored without a key")


if __name__ == "__main__":
    e2e.main([test_hint_refusals, test_no_public_key_refuses_all])
