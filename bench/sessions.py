#!/usr/bin/env python3
"""Collector memory under hostile sessions (issue 9, items 2 and 3).

Starts a real collector (default limits) and a real agent (web-01) over
TLS on 127.0.0.1 in a temp dir, then attacks the collector and reports
its RSS and whether the agent still connects and delivers:

  prehello   N TLS sessions with agent certificates (spread over CERTS
             certificates) each announce an 8 MiB frame before HELLO and
             send all of it but one byte, then hold the session open.
  posthello  the same after a valid HELLO (an EVENTS frame of 8 MiB).
  idle       N raw TCP connections that never start TLS, re-dialled when
             the collector closes them, held for HOLD seconds.

In each case web-01 is stopped before the attack and started again while
it holds (so it must connect anew); a line is appended to its tailed file
and the script waits (up to 60 s) until tocsinctl shows it ("during").

  python3 bench/sessions.py --build build-rel prehello 80
  python3 bench/sessions.py --build build-rel --certs 20 posthello 80
  python3 bench/sessions.py --build build-rel idle 10000

Prints one line of figures. Python stdlib only (ssl, socket, selectors);
uses the e2e harness (tests/e2e/tocsin_e2e.py) for the PKI and configs.
"""

import argparse
import os
import resource
import selectors
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def rss(pid):
    """(VmRSS, VmHWM) of pid in MiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024.0
    return out.get("VmRSS", 0.0), out.get("VmHWM", 0.0)


def delivered(env, e2e, log, text, timeout):
    with open(log, "a") as f:
        f.write("ERROR %s\n" % text)
    t0 = time.monotonic()
    try:
        e2e.wait_for(lambda: any(text in (e.get("message") or "")
                                 for e in env.events("web-01")),
                     timeout, "delivery", interval=0.25)
        return time.monotonic() - t0
    except e2e.TestFailure:
        return None


def hello(e2e, name):
    return e2e.frame(e2e.mp([1, {"vmin": 1, "vmax": 1, "agent": name,
                                 "epoch": 7, "sw": "bench", "hb": 30000}]))


def big_frame_sessions(env, e2e, n, certs, after_hello):
    """Open n TLS sessions, each sending 8 MiB - 1 of an 8 MiB frame."""
    held, stalled, refused = [], 0, 0
    body = b"\x92\x03" + b"x" * ((8 << 20) - 3)  # one byte short
    for i in range(n):
        name = "m%03d" % (i % certs)
        try:
            raw = socket.create_connection(("127.0.0.1", env.port), timeout=20)
            s = e2e.peer_context(env, name).wrap_socket(raw, server_hostname="localhost")
            if after_hello:
                s.sendall(hello(e2e, name))
            # The collector stops reading when its budget is full: then
            # the kernel's buffers fill and the send stalls.
            s.settimeout(1)
            try:
                s.sendall(struct.pack(">I", 8 << 20) + body)
            except socket.timeout:
                stalled += 1
            held.append(s)
        except OSError:
            refused += 1  # closed by the collector
    return held, stalled, refused


class IdleCrowd:
    """n raw TCP sockets kept open: any the collector closes is re-dialled."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.sel = selectors.DefaultSelector()
        self.redials = 0
        self.failed = 0
        for _ in range(n):
            self.dial()

    def dial(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
        except OSError:
            self.failed += 1

    def tend(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    self.sel.unregister(s)
                    s.close()
                    self.redials += 1
                    self.dial()

    def close(self):
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--certs", type=int, default=1)
    ap.add_argument("--hold", type=float, default=20.0)
    ap.add_argument("mode", choices=("prehello", "posthello", "idle"))
    ap.add_argument("n", type=int)
    a = ap.parse_args()

    os.environ["TOCSIN_BUILD"] = os.path.abspath(a.build)
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
    import tocsin_e2e as e2e

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = e2e.Env("bench-sessions")
    ok = False
    try:
        env.make_pki(agents=["web-01"] + ["m%03d" % i for i in range(a.certs)])
        log = env.write("logs/app.log", "")
        env.collector_config()
        col = env.collector().start()
        col.wait_log("listening on")
        conf = env.agent_config("web-01", [(log, [("app-error", "ERROR (?<detail>.*)", "error")])])
        ag = env.agent(conf).start()
        first = delivered(env, e2e, log, "warm-up", 60)
        # The agent connects anew while the attack holds.
        ag.stop()
        base = rss(col.proc.pid)[0]
        t0 = time.monotonic()
        extra = ""
        if a.mode == "idle":
            crowd = IdleCrowd(env.port, a.n)
            crowd.tend(2)
            ag.start()
            during = delivered(env, e2e, log, "during the attack", 60)
            crowd.tend(max(0.0, a.hold - (time.monotonic() - t0)))
            now, peak = rss(col.proc.pid)
            extra = "redials %d, dial failures %d" % (crowd.redials, crowd.failed)
            crowd.close()
        else:
            held, stalled, refused = big_frame_sessions(env, e2e, a.n, a.certs,
                                                        a.mode == "posthello")
            ag.start()
            during = delivered(env, e2e, log, "during the attack", 60)
            time.sleep(max(0.0, a.hold - (time.monotonic() - t0)))
            now, peak = rss(col.proc.pid)
            extra = ("sessions held %d (their send stalled: %d), refused %d"
                     % (len(held), stalled, refused))
            for s in held:
                s.close()
        after = delivered(env, e2e, log, "after the attack", 60)
        fmt = lambda d: "no (60 s)" if d is None else "%.1f s" % d
        print("%s n=%d certs=%d: collector RSS %.1f MiB before, %.1f MiB after %.0f s, "
              "peak %.1f MiB; agent delivered: warm-up %s, during %s, after %s; %s"
              % (a.mode, a.n, a.certs, base, now, time.monotonic() - t0, peak,
                 fmt(first), fmt(during), fmt(after), extra))
        keys = ("refused", "memory", "closed:", "accept", "max_", "before HELLO", "not reading")
        warn = [l for l in col.log().splitlines() if any(k in l for k in keys)]
        print("collector log: %d lines, %d about limits; the first:"
              % (len(col.log().splitlines()), len(warn)))
        for l in warn[:6]:
            print("  " + l[:200])
        ok = True
    finally:
        env.cleanup(ok)


if __name__ == "__main__":
    main()
