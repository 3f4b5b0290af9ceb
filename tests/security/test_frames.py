#!/usr/bin/env python3
"""Hostile frames from a peer with a valid agent certificate (docs/security.md,
"An agent host, or a stolen agent certificate"): every malformed frame
closes only that session with a logged reason; the collector stays up,
the honest agent keeps delivering, and the hostile peer stores nothing."""

import json
import socket
import struct

import tocsin_e2e as e2e
from tocsin_e2e import frame, mp


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_hostile_frames_close_only_that_session(env):
    env.make_pki(agents=("web-01", "mallory"))
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [(log, [("app-error", "ERROR (?<detail>.*)", "error")])])
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    hello = frame(mp([1, {"vmin": 1, "vmax": 1, "agent": "mallory",
                          "epoch": 5, "sw": "evil"}]))
    # Each case, and the reason the collector must log for that session.
    cases = [
        ("garbage", b"\x00\x00\x00\x05\xff\xff\xff\xff\xff", r"malformed frame: "),
        ("oversized", struct.pack(">I", 0x7fffffff) + b"x" * 100,
         r"frame of 2147483647 bytes before HELLO"),
        ("trailing bytes", frame(mp([1, {"vmin": 1, "vmax": 1, "agent": "mallory",
                                         "epoch": 5, "sw": "x"}]) + b"\x00"),
         r"malformed frame: trailing bytes"),
        ("deep nesting", frame(b"\x92\x01" + b"\x91" * 200 + b"\x00"),
         r"malformed frame: nesting over max_depth"),
        ("huge array claim", frame(b"\x92\x03\xdd\xff\xff\xff\xff"),
         r"malformed frame: container over max_elems"),
        ("events before hello", frame(mp([3, {"events": []}])), r"expected HELLO, got EVENTS"),
        ("bad event", hello + frame(mp([3, {"events": [{"v": 1, "seq": "x"}]}])),
         r'malformed frame: bad value for key "seq"'),
    ]
    for name, payload, why in cases:
        before = len(col.log())
        port = []
        e2e.peer_session(env, "mallory", payload, port_out=port)
        # This session, by its source port, closed for this reason.
        col.wait_log(r"agent mallory \(127\.0\.0\.1:%d\): %s" % (port[0], why), after=before)
        e2e.check(col.alive(), "collector died on %s" % name)
    # The honest agent is unaffected and mallory stored nothing.
    append(log, "ERROR still fine\n")
    evs = e2e.wait_for(lambda: env.events(), 30, "the honest agent's event", interval=0.2)
    e2e.check([e["host"] for e in evs] == ["web-01"], "events: %r" % evs)


def read_frames(s, want_type, timeout=10):
    """Frames ([type, map] bodies) from socket S, up to and including the
    first of WANT_TYPE; returns their types."""
    s.settimeout(timeout)
    buf, types = b"", []
    while True:
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            n = struct.unpack(">I", buf[:4])[0]
            body, buf = buf[4:4 + n], buf[4 + n:]
            # [type, {...}]: a fixarray of 2, then a positive fixint.
            types.append(body[1])
            if body[1] == want_type:
                return types
        d = s.recv(65536)
        if not d:
            return types
        buf += d


def test_unknown_hint_ack_is_ignored(env):
    """A HINT_ACK for a hint never sent is logged (once per 10 s however
    many come) and ignored: the session stays open and answers PING."""
    env.make_pki(agents=("mallory",))
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    hello = frame(mp([1, {"vmin": 1, "vmax": 1, "agent": "mallory",
                          "epoch": 5, "sw": "evil"}]))
    acks = b"".join(frame(mp([6, {"id": i}])) for i in (1, 2**63, 77))
    ping = frame(mp([7, {"ts": 1}]))
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        with e2e.peer_context(env, "mallory").wrap_socket(
                raw, server_hostname="localhost") as s:
            s.sendall(hello)
            e2e.check(read_frames(s, 2) == [2], "no WELCOME")
            s.sendall(acks + ping)
            types = read_frames(s, 8)
            e2e.check(types == [8], "after the acks: %r, not a PONG" % types)
            col.wait_log(r"agent mallory \(127\.0\.0\.1:\d+\): HINT_ACK for hint 1 "
                         r"that is not outstanding: ignored")
    e2e.check(col.alive(), "collector died")
    ignored = [l for l in col.log().splitlines() if "HINT_ACK for hint" in l]
    e2e.check(len(ignored) == 1, "not rate-limited: %r" % ignored)
    e2e.check("BYE" not in col.log() and "malformed" not in col.log(),
              "session refused: %s" % col.log())


def read_until(s, want_type, timeout=30):
    """Frame bodies from socket S up to and including the first of
    WANT_TYPE (None at a close or timeout)."""
    s.settimeout(timeout)
    buf = b""
    while True:
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            n = struct.unpack(">I", buf[:4])[0]
            body, buf = buf[4:4 + n], buf[4 + n:]
            if body[1] == want_type:
                return body
        try:
            d = s.recv(65536)
        except (socket.timeout, OSError):
            return None
        if not d:
            return None
        buf += d


def test_hostile_hint_refusal(env):
    """A HINT_ACK that says "refused" carries the peer's text to the
    store and to tocsinctl: terminal escapes are escaped and the reason
    is cut at 256 bytes; the hint is recorded refused, the session stays
    open and the collector up."""
    env.make_pki(agents=("mallory",))
    env.write("runbooks/up.md", "---\nid: up\ntitle: Upstream down\n"
              "match: {class: [upstream-down]}\n---\nCheck it.\n")
    env.collector_config("runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    hello = frame(mp([1, {"vmin": 1, "vmax": 1, "agent": "mallory",
                          "epoch": 5, "sw": "evil"}]))
    ev = {"v": 1, "seq": 1, "ts": 1700000000 * 10**9, "host": "mallory",
          "kind": "log", "rule": "upstream-down", "sev": 3, "msg": "down"}
    evil = "\x1b]52;c;SGVsbG8=\x07\x1b[2J\u009b" + "x" * 3000
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        with e2e.peer_context(env, "mallory").wrap_socket(
                raw, server_hostname="localhost") as s:
            s.sendall(hello)
            e2e.check(read_until(s, 2) is not None, "no WELCOME")
            s.sendall(frame(mp([3, {"events": [ev]}])))
            hint = read_until(s, 5)
            e2e.check(hint is not None, "no HINT")
            # [5, {"id": N, ...}]: 92 05 8N a2 'id' N
            hid = hint[6]
            e2e.check(hint[4:6] == b"id" and hid < 0x80, repr(hint[:8]))
            s.sendall(frame(mp([6, {"id": hid, "refused": evil}])) +
                      frame(mp([7, {"ts": 1}])))
            e2e.check(read_until(s, 8) is not None, "no PONG after the refusal")
            col.wait_log(r"hint %d refused by mallory: \\x1b\]52;c;" % hid)
    e2e.check(col.alive(), "collector died")
    h = json.loads(env.ctl("hints", "list", "--json", "--state", "refused"))
    e2e.check(len(h) == 1 and h[0]["id"] == hid, repr(h))
    err = h[0]["error"]
    prefix = "refused by the agent: "
    e2e.check(err.startswith(prefix + "\\x1b]52;c;SGVsbG8=\\x07\\x1b[2J"),
              repr(err))
    e2e.check("\x1b" not in err and "\x9b" not in err and
              "\u009b" not in err, repr(err))
    e2e.check(len(err.encode()) <= len(prefix) + 256, "not cut: %d" % len(err))
    out = env.ctl("hints", "list")
    e2e.check("\x1b" not in out and "\u009b" not in out and " refused " in out,
              repr(out))


if __name__ == "__main__":
    e2e.main([test_hostile_frames_close_only_that_session,
              test_unknown_hint_ack_is_ignored,
              test_hostile_hint_refusal])
