#!/usr/bin/env python3
"""A stolen agent key cannot wedge that agent by its sequence numbers:
the collector refuses a batch at the top of the seq range, or one that
jumps far past the agent's mark, storing nothing; the real agent then
delivers as before. And an agent told a mark with no room after it says
so once, keeps its events, and does not spin."""

import os
import re
import socket
import sqlite3
import struct
import time

import tocsin_e2e as e2e

SEQ_MAX = (1 << 63) - 1
JUMP_MAX = 1 << 32


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def frame(ftype, payload):
    return e2e.frame(e2e.mp([ftype, payload]))


def event(seq, msg="forged"):
    return {"v": 1, "seq": seq, "ts": time.time_ns(), "host": "web-01",
            "kind": "log", "sev": 3, "msg": msg}


def read_frames(s, timeout=10):
    """Every frame until the collector closes: [(type, raw body)]."""
    got = e2e.recv_all(s, timeout)
    out = []
    while len(got) >= 4:
        n = struct.unpack(">I", got[:4])[0]
        body = got[4:4 + n]
        got = got[4 + n:]
        out.append((body[1], body))
    return out


def forged_session(env, epoch, seqs):
    """web-01's real certificate, our own HELLO and one EVENTS frame."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        with e2e.peer_context(env, "web-01").wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(frame(1, {"vmin": 1, "vmax": 1, "agent": "web-01",
                                "epoch": epoch, "sw": "forged"}))
            s.sendall(frame(3, {"events": [event(q) for q in seqs]}))
            return read_frames(s)


def setup(env, extra=""):
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])], extra=extra)
    col = env.collector().start()
    col.wait_log("listening on")
    return col, log, conf


def refused(env, col, epoch, seqs, why):
    before = len(col.log())
    frames = forged_session(env, epoch, seqs)
    types = [t for t, _ in frames]
    e2e.check(types[:1] == [2], "no WELCOME first: %r" % frames)
    e2e.check(4 not in types, "the forged batch was acked: %r" % frames)
    bye = [b for t, b in frames if t == 9]
    e2e.check(bye and b"nothing stored" in bye[0], "no BYE saying why: %r" % frames)
    col.wait_log(r"agent web-01 \(127\.0\.0\.1:\d+\): EVENTS refused, nothing stored: .*"
                 + why, after=before)
    e2e.check(col.alive(), "collector died")


def test_forged_top_and_jump_are_refused(env):
    col, log, conf = setup(env)
    # The seq that wrapped the real agent's next spool to 0.
    refused(env, col, 11, [(1 << 64) - 1], r"seq 18446744073709551615 is beyond")
    refused(env, col, 12, [5, (1 << 64) - 1], r"seq 18446744073709551615 is beyond")
    refused(env, col, 13, [SEQ_MAX + 1], r"seq %d is beyond" % (SEQ_MAX + 1))
    # A jump past the bound from the mark (0: nothing stored yet).
    refused(env, col, 14, [JUMP_MAX + 1], r"seq %d jumps %d past the mark 0"
            % (JUMP_MAX + 1, JUMP_MAX + 1))
    refused(env, col, 15, [1, 2, JUMP_MAX + 3], r"jumps")
    # Nothing of any of them is stored, not even the seqs below the bound.
    time.sleep(0.5)
    e2e.check(env.events() == [], "a refused batch was stored: %r" % env.events())

    # The real agent, fresh spool, same name: delivers from seq 1.
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    append(log, "ERROR real one\nERROR real two\n")
    evs = e2e.wait_for(lambda: len(env.events()) >= 2 and env.events(), 30, "2 events",
                       interval=0.2)
    e2e.check([e["message"] for e in evs] == ["ERROR real one", "ERROR real two"],
              "events: %r" % evs)
    e2e.check([e["seq"] for e in evs] == [1, 2], "seqs: %r" % [e["seq"] for e in evs])
    e2e.check("UNIQUE" not in ag.log(), "agent log: UNIQUE constraint")

    # A batch within the bound is still taken (the bound is not a ban).
    frames = forged_session(env, 16, [2 + JUMP_MAX])
    e2e.check(4 in [t for t, _ in frames], "a batch within the bound was refused: %r" % frames)
    e2e.wait_for(lambda: len(env.events()) == 3, 10, "the batch within the bound")


def test_agent_told_a_mark_at_the_top(env):
    # A store written by an older collector that took a seq at the top.
    col, log, conf = setup(env, extra="sender: {backoff_min: 10ms, backoff_max: 1s}\n")
    refused(env, col, 21, [(1 << 64) - 1], r"beyond")
    col.stop()
    db = sqlite3.connect(os.path.join(env.dir, "state", "collector.db"))
    with db:
        db.execute("INSERT INTO agents(name, epoch, hwm) VALUES('web-01', 21, ?) "
                   "ON CONFLICT(name) DO UPDATE SET hwm = excluded.hwm", (SEQ_MAX,))
    db.close()
    before = len(col.log())
    col.start()
    col.wait_log("listening on", after=before)

    append(log, "ERROR kept\n")
    ag = env.agent(conf).start()
    ag.wait_log(r"its mark for this agent is seq %d, too near the highest seq %d"
                % (SEQ_MAX, SEQ_MAX))
    # Five seconds at backoff_max 1s: a few quiet retries, one warning,
    # no spinning, no UNIQUE failures, the agent alive.
    time.sleep(5)
    text = ag.log()
    e2e.check(ag.alive(), "agent died")
    e2e.check(text.count("too near the highest seq") == 1,
              "warned %d times" % text.count("too near the highest seq"))
    e2e.check("UNIQUE" not in text and "link down" not in text,
              "agent log spins:\n%s" % text[-2000:])
    connects = len(re.findall(r"agent web-01 \([^)]*\): connected", col.log()[before:]))
    e2e.check(connects <= 12, "%d sessions in 5 s" % connects)
    e2e.check(env.events() == [], "events were stored: %r" % env.events())

    # The admin resets the agent's record: the kept event is delivered.
    col.stop()
    db = sqlite3.connect(os.path.join(env.dir, "state", "collector.db"))
    with db:
        db.execute("UPDATE agents SET hwm = 0 WHERE name = 'web-01'")
    db.close()
    col.start()
    evs = e2e.wait_for(lambda: env.events(), 30, "the kept event", interval=0.2)
    e2e.check([e["message"] for e in evs] == ["ERROR kept"], "events: %r" % evs)
    ag.wait_log("the seq mark has room again")


if __name__ == "__main__":
    e2e.main([test_forged_top_and_jump_are_refused, test_agent_told_a_mark_at_the_top])
