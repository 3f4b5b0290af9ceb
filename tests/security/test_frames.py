#!/usr/bin/env python3
"""Hostile frames from a peer with a valid agent certificate (docs/security.md,
"An agent host, or a stolen agent certificate"): every malformed frame
closes only that session with a logged reason; the collector stays up,
the honest agent keeps delivering, and the hostile peer stores nothing."""

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


if __name__ == "__main__":
    e2e.main([test_hostile_frames_close_only_that_session])
