#!/usr/bin/env python3
"""Session budgets (docs/security.md, "The network" and "An agent host, or a
stolen agent certificate"): what a peer may hold open at the collector
before and after it says HELLO. Each test has a hostile peer do its worst
while an honest agent, web-01, must still connect and deliver."""

import os
import socket
import ssl
import struct
import threading
import time

import tocsin_e2e as e2e
from tocsin_e2e import frame, mp


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def setup(env, limits="", agents=("web-01", "mallory"), argv_prefix=()):
    env.make_pki(agents=agents)
    log = env.write("logs/app.log", "")
    env.collector_config("limits: {%s}\n" % limits if limits else "")
    col = env.collector()
    col.argv = list(argv_prefix) + col.argv
    col.start()
    col.wait_log("listening on")
    return col, log


def honest_agent_delivers(env, log, text, ag=None):
    """Start web-01 (unless running) and wait until TEXT is stored."""
    if ag is None:
        conf = env.agent_config("web-01", [(log, [("app-error", "ERROR (?<detail>.*)", "error")])])
        ag = env.agent(conf).start()
    append(log, "ERROR %s\n" % text)
    e2e.wait_for(lambda: any(text in (e.get("message") or "") for e in env.events("web-01")),
                 30, "web-01's event %r" % text, interval=0.2)
    return ag


def tls_open(env, name, timeout=10):
    """A TLS session as agent NAME, handshake done, nothing sent."""
    raw = socket.create_connection(("127.0.0.1", env.port), timeout=timeout)
    return e2e.peer_context(env, name).wrap_socket(raw, server_hostname="localhost")


def hello(name, **extra):
    m = {"vmin": 1, "vmax": 1, "agent": name, "epoch": 5, "sw": "evil"}
    m.update(extra)
    return frame(mp([1, m]))


def test_pre_hello_big_frame_refused(env):
    """Item 2: before HELLO a peer may not announce more than 64 KiB. The
    length prefix alone closes the session, before any body is kept."""
    col, log = setup(env)
    ag = honest_agent_delivers(env, log, "before")
    for i in range(4):
        before = len(col.log())
        s = tls_open(env, "mallory")
        try:
            # An 8 MiB frame announced, 256 KiB of it sent.
            s.sendall(struct.pack(">I", 8 << 20) + b"\x92" + b"x" * (256 << 10))
        except OSError:
            pass  # closed under our feet: that is the point
        got = e2e.recv_all(s, 10)
        s.close()
        col.wait_log(r"mallory \(127\.0\.0\.1:\d+\): frame of 8388608 bytes "
                     r"before HELLO \(limit 65536 bytes\)", after=before)
        e2e.check(b"before HELLO" in got, "no BYE with the reason: %r" % got[:200])
    # 64 KiB is the limit: a frame of 64 KiB + 1 is refused too.
    before = len(col.log())
    got = e2e.peer_session(env, "mallory", struct.pack(">I", (64 << 10) + 1))
    col.wait_log(r"frame of 65537 bytes before HELLO", after=before)
    honest_agent_delivers(env, log, "after", ag)
    e2e.check(col.alive(), "collector died")


def test_zero_length_frame_named(env):
    """Item 11: a frame of length 0 is called that, not 'over 8388608'."""
    col, log = setup(env)
    before = len(col.log())
    got = e2e.peer_session(env, "mallory", hello("mallory") + b"\x00\x00\x00\x00")
    col.wait_log(r"mallory .*frame length 0", after=before)
    e2e.check("over 8388608" not in col.log()[before:], "length 0 reported as too large")
    e2e.check(b"frame length 0" in got, "no BYE with the reason: %r" % got[:200])


def test_sessions_per_certificate(env):
    """Item 2: one certificate may hold sessions_per_agent sessions, said
    HELLO or not; the next is refused with BYE. A closed one frees a place."""
    col, log = setup(env, "sessions_per_agent: 2")
    ag = honest_agent_delivers(env, log, "first")
    held = [tls_open(env, "mallory"), tls_open(env, "mallory")]
    # The server sees each handshake end a little after the client does.
    time.sleep(0.5)
    before = len(col.log())
    third = tls_open(env, "mallory")
    got = e2e.recv_all(third, 10)
    third.close()
    col.wait_log(r"mallory \(127\.0\.0\.1:\d+\): refused: 2 sessions with this "
                 r"certificate are open \(limits\.sessions_per_agent\)", after=before)
    e2e.check(b"too many sessions with this certificate" in got,
              "no BYE with the reason: %r" % got[:200])
    # Another identity is not affected.
    honest_agent_delivers(env, log, "second", ag)
    # Closing one makes room: the next one is kept open.
    held.pop().close()
    time.sleep(0.5)
    again = tls_open(env, "mallory")
    again.settimeout(1.5)
    try:
        d = again.recv(100)
        e2e.check(False, "session refused after a place was freed: %r" % d)
    except socket.timeout:
        pass
    again.close()
    for s in held:
        s.close()


def test_pending_budget_evicts_oldest(env):
    """Item 3: raw TCP sockets that never start TLS are pending connections
    with their own budget (max_pending); when it is full the oldest goes,
    and max_agents counts only agents past HELLO, so idle sockets held by
    anyone who can reach the port cannot lock agents out."""
    col, log = setup(env, "max_pending: 8, max_agents: 8, handshake_timeout: 120s")
    idle = []
    for _ in range(20):
        idle.append(socket.create_connection(("127.0.0.1", env.port)))
    col.wait_log(r"connection \? \(127\.0\.0\.1:\d+\) closed: 8 connections have "
                 r"not said HELLO \(limits\.max_pending\), the oldest makes room")
    # Only one such line however many were evicted (rate-limited).
    e2e.check(col.log().count("limits.max_pending") == 1,
              "eviction warnings not rate-limited:\n%s" % col.log())
    # A real agent connects while the sockets are held open.
    honest_agent_delivers(env, log, "through the crowd")
    # The newest idle sockets are still open (only the oldest were closed).
    idle[-1].settimeout(0.5)
    try:
        d = idle[-1].recv(1)
        e2e.check(False, "the newest idle socket was closed (%r)" % d)
    except socket.timeout:
        pass
    for s in idle:
        s.close()


def test_heartbeat_out_of_range(env):
    """Item 7: HELLO's hb is bounded to 1 s..1 day; 2^62 made the collector
    log 'agent silent for 0s' every second."""
    col, log = setup(env)
    for hb in (1 << 62, 999, 86400 * 1000 + 1):
        before = len(col.log())
        got = e2e.peer_session(env, "mallory", hello("mallory", hb=hb))
        col.wait_log(r'mallory .*malformed frame: heartbeat "hb" out of range', after=before)
        e2e.check(b"out of range" in got, "no BYE with the reason: %r" % got[:200])
        e2e.check("connected (" not in col.log()[before:], "HELLO with hb=%d accepted" % hb)
    # The bounds themselves are fine.
    before = len(col.log())
    s = tls_open(env, "mallory")
    s.sendall(hello("mallory", hb=86400 * 1000))
    col.wait_log(r"agent mallory \(127\.0\.0\.1:\d+\): connected", after=before)
    s.close()
    time.sleep(2)
    e2e.check("mallory silent for" not in col.log(), "agent called silent:\n%s" % col.log())


def test_memory_budget_backpressure(env):
    """Item 2: every session's buffers count in limits.session_memory.
    Sessions past HELLO that announce big frames and stall hold their
    reservation; beyond the budget the collector stops reading them
    (logged, rate-limited) instead of growing, and an honest agent's
    small batches still get through."""
    names = ["m%d" % i for i in range(4)]
    col, log = setup(env, "session_memory: 32MiB", agents=["web-01"] + names)
    ag = honest_agent_delivers(env, log, "before")
    held = []
    for n in names:
        for _ in range(4):
            s = tls_open(env, n)
            s.sendall(hello(n, hb=30000))
            # An EVENTS frame of 8 MiB announced, 64 KiB of it sent.
            s.sendall(struct.pack(">I", 8 << 20) + b"\x92\x03" + b"x" * (64 << 10))
            held.append(s)
    col.wait_log(r"session memory full \(\d+ of 33554432 bytes\): agent m\d "
                 r"\(127\.0\.0\.1:\d+\) waits to receive a frame of 8388612 bytes")
    time.sleep(1)
    e2e.check(col.log().count("session memory full") == 1,
              "budget warnings not rate-limited")
    honest_agent_delivers(env, log, "during", ag)
    for s in held:
        s.close()
    honest_agent_delivers(env, log, "after", ag)


def test_emfile_logged(env):
    """Item 3: running out of descriptors is logged once per 10 s with a
    count, does not spin, and a real agent connects once sockets close
    (and even while they are held: the oldest pending one makes room)."""
    col, log = setup(env, "max_pending: 1000, handshake_timeout: 120s",
                     argv_prefix=("prlimit", "--nofile=48:48", "--"))
    col.wait_log(r"open files limit \(RLIMIT_NOFILE\) is 48")
    idle = []
    for _ in range(60):
        try:
            idle.append(socket.create_connection(("127.0.0.1", env.port), timeout=2))
        except OSError:
            break
    col.wait_log(r"accept: Too many open files: \d+ sessions open, \d+ not past HELLO; "
                 r"closing the oldest of those to make room")
    time.sleep(3)
    n = col.log().count("accept: Too many open files")
    e2e.check(n == 1, "%d accept warnings in 3 s (rate limit is one per 10 s)" % n)
    # Not spinning: the collector's CPU time stays small while starved.
    with open("/proc/%d/stat" % col.proc.pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    t0 = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    time.sleep(2)
    with open("/proc/%d/stat" % col.proc.pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    t1 = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    e2e.check(t1 - t0 < 1.0, "collector used %.2fs CPU in 2 s while out of "
              "descriptors (spinning?)" % (t1 - t0))
    for s in idle:
        s.close()
    honest_agent_delivers(env, log, "after the flood")
    e2e.check(col.alive(), "collector died")


def read_frame(s, buf):
    """One frame from TLS socket S (BUF: bytes already read): (type, body,
    rest), or (None, b"", b"") once the collector closed."""
    while True:
        if len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) >= 4 + n:
                return buf[5] if n > 1 else None, buf[4:4 + n], buf[4 + n:]
        try:
            d = s.recv(65536)
        except (OSError, socket.timeout):
            d = b""
        if not d:
            return None, b"", b""
        buf += d


def agent_session(env, name, nevents, results, start):
    """As agent NAME: HELLO, one EVENTS of NEVENTS, read until ACK of the
    last seq. results[name] = the frame types seen."""
    seen = []
    results[name] = seen
    start.wait()
    try:
        s = tls_open(env, name, timeout=60)
        s.sendall(hello(name, hb=30000))
        evs = [{"v": 1, "seq": q, "ts": time.time_ns(), "host": name, "kind": "log",
                "sev": 3, "msg": "%s event %d" % (name, q)} for q in range(1, nevents + 1)]
        s.sendall(frame(mp([3, {"events": evs}])))
        buf = b""
        while True:
            t, body, buf = read_frame(s, buf)
            seen.append(t)
            if t is None or t == 9:
                break
            if t == 4 and body.endswith(mp(nevents)):
                break
        s.close()
    except (OSError, ssl.SSLError) as e:
        seen.append("error: %s" % e)


def test_many_agents_at_once(env):
    """Issue 11 item 9: the collector paces its TLS work per loop iteration
    (handshakes and reads beyond 20 ms wait for the next iteration, in
    arrival order). A crowd of agents connecting at the same moment, while
    one agent floods big batches, must all be welcomed and acked, and
    every event stored: pacing may delay a session, never lose one."""
    names = ["crowd-%03d" % i for i in range(100)]
    col, log = setup(env, "max_pending: 256", agents=["web-01", "flood"] + names)
    # The flooder: 40 batches of 500 events, as fast as TLS takes them.
    fl = tls_open(env, "flood", timeout=60)
    fl.sendall(hello("flood", hb=30000))
    big = "x" * 200

    def batch(b):
        # EVENTS {"events": [500 events]}: an array16, beyond mp's fixarray.
        evs = [mp({"v": 1, "seq": b * 500 + q + 1, "ts": time.time_ns(), "host": "flood",
                   "kind": "log", "sev": 3, "msg": big}) for q in range(500)]
        return frame(b"\x92\x03\x81" + mp("events") + b"\xdc" + struct.pack(">H", 500)
                     + b"".join(evs))
    batches = b"".join(batch(b) for b in range(40))
    results = {}
    start = threading.Barrier(len(names) + 1)
    threads = [threading.Thread(target=agent_session, args=(env, n, 5, results, start))
               for n in names]
    for t in threads:
        t.start()
    flood = threading.Thread(target=fl.sendall, args=(batches,))
    start.wait()
    flood.start()
    for t in threads:
        t.join(120)
    flood.join(120)
    bad = {n: r for n, r in results.items() if not r or r[0] != 2 or r[-1] != 4}
    e2e.check(len(results) == len(names) and not bad,
              "%d agents not welcomed and acked: %r" % (len(bad), dict(list(bad.items())[:5])))
    stored = {}
    for e in env.events():
        stored[e["host"]] = stored.get(e["host"], 0) + 1
    short = [n for n in names if stored.get(n) != 5]
    e2e.check(not short, "events missing for %d agents: %r" % (
        len(short), [(n, stored.get(n)) for n in short[:5]]))
    e2e.wait_for(lambda: len(env.events("flood")) == 20000, 60, "the flood's 20,000 events")
    fl.close()
    honest_agent_delivers(env, log, "after the crowd")
    e2e.check(col.alive(), "collector died")


if __name__ == "__main__":
    e2e.main([test_pre_hello_big_frame_refused,
              test_zero_length_frame_named,
              test_sessions_per_certificate,
              test_pending_budget_evicts_oldest,
              test_heartbeat_out_of_range,
              test_memory_budget_backpressure,
              test_emfile_logged,
              test_many_agents_at_once])
