#!/usr/bin/env python3
"""Nothing lost, nothing twice: DESIGN.md's delivery guarantee, proven.

200,000 lines are appended to two files (a known subset matching the
rules; lines are written in pieces that split lines mid-way) while the
agent is killed with SIGKILL at least 5 times and the collector at least
5 times, each restarted, sometimes both down at once. At the end the
collector must hold exactly the matching lines, each once, in file order
per file.
"""

import os
import random
import signal
import threading
import time

import tocsin_e2e as e2e

LINES_PER_FILE = 100_000
KILLS = 6  # of each daemon


def line(name, i):
    # Every 9th line of a.log and every 11th of b.log matches; the number
    # makes every line unique so a duplicate or a loss is visible.
    if name == "a" and i % 9 == 0:
        return "2026-11-26T10:00:00Z web ERROR request failed id=%06d\n" % i
    if name == "b" and i % 11 == 0:
        return "2026-11-26T10:00:00Z db FATAL checkpoint stalled id=%06d\n" % i
    return "2026-11-26T10:00:00Z %s INFO all is well id=%06d padding padding\n" % (name, i)


def expected(name):
    out = []
    for i in range(LINES_PER_FILE):
        s = line(name, i)
        if ("ERROR" in s) or ("FATAL" in s):
            out.append(s.rstrip("\n"))
    return out


def writer(path, name, stop_err, duration):
    """Append all lines over about `duration` seconds, in uneven pieces."""
    rnd = random.Random(name)
    data = "".join(line(name, i) for i in range(LINES_PER_FILE)).encode()
    pos = 0
    chunks = 400
    pause = duration / chunks
    try:
        with open(path, "ab", buffering=0) as f:
            while pos < len(data):
                n = rnd.randint(1, 2 * len(data) // chunks)
                f.write(data[pos:pos + n])  # often ends mid-line
                pos += n
                time.sleep(pause * rnd.random() * 2)
    except Exception as ex:  # reported by the main thread
        stop_err.append(ex)


def test_kill_both_sides_repeatedly(env):
    env.make_pki(agents=("web-01",))
    logs = os.path.join(env.dir, "logs")
    os.makedirs(logs)
    a, b = os.path.join(logs, "a.log"), os.path.join(logs, "b.log")
    env.collector_config()
    conf = env.agent_config("web-01", [
        (a, [("a-error", "ERROR (?<what>.*) id=(?<id>[0-9]+)", "error")]),
        (b, [("b-fatal", "FATAL", "critical")]),
    ], extra="sender: {backoff_min: 50ms, backoff_max: 500ms}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    ag = env.agent(conf).start()

    errs = []
    duration = 40.0
    threads = [threading.Thread(target=writer, args=(p, n, errs, duration))
               for p, n in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()

    rnd = random.Random(7)
    kills = {"agent": 0, "collector": 0}
    t_end = time.monotonic() + duration
    step = duration / (2 * KILLS + 1)
    for k in range(2 * KILLS):
        time.sleep(step * (0.5 + rnd.random()))
        victim, other = (ag, col) if k % 2 == 0 else (col, ag)
        victim.kill(signal.SIGKILL)
        kills["agent" if victim is ag else "collector"] += 1
        if k % 4 == 3:
            # Both down at once for a moment: the agent's spool and the
            # collector's store must both recover from their files alone.
            other.kill(signal.SIGKILL)
            kills["agent" if other is ag else "collector"] += 1
            time.sleep(0.3)
            other.start()
        time.sleep(rnd.random() * 0.5)
        victim.start()
    for t in threads:
        t.join()
    e2e.check(not errs, "writer failed: %r" % errs)
    e2e.check(kills["agent"] >= 5 and kills["collector"] >= 5,
              "not enough kills: %r" % kills)
    print("kills: %r; writing took %.0fs longer than planned"
          % (kills, max(0, time.monotonic() - t_end)))

    want = {a: expected("a"), b: expected("b")}
    total = sum(len(v) for v in want.values())

    def delivered():
        return len(env.events()) >= total

    e2e.wait_for(delivered, 300, "%d events at the collector" % total, interval=2)
    time.sleep(2)  # anything beyond the expected count would be a duplicate
    events = env.events()

    seen = set()
    for ev in events:
        key = (ev["host"], ev["seq"])
        e2e.check(key not in seen, "event %r stored twice" % (key,))
        seen.add(key)
    for path, lines in want.items():
        got = [ev for ev in events if ev["source"] == path]
        got.sort(key=lambda ev: ev["seq"])
        msgs = [ev["message"] for ev in got]
        if msgs != lines:
            gs, ws = set(msgs), set(lines)
            missing = [m for m in lines if m not in gs]
            extra = [m for m in msgs if m not in ws]
            dups = len(msgs) - len(gs)
            e2e.check(False, "%s: %d expected, %d stored; %d missing (first %r), "
                      "%d unexpected (first %r), %d duplicated, order %s"
                      % (path, len(lines), len(msgs), len(missing), missing[:1],
                         len(extra), extra[:1], dups,
                         "ok" if sorted(msgs) == msgs else "wrong"))
    e2e.check(len(events) == total, "%d events stored, %d expected" % (len(events), total))
    for ev in events:
        e2e.check(ev["host"] == "web-01", "host is %r" % ev["host"])
    print("%d lines written, %d events stored exactly once, in order, after "
          "%d agent and %d collector SIGKILLs"
          % (2 * LINES_PER_FILE, total, kills["agent"], kills["collector"]))
    e2e.check(col.stop() == 0, "collector did not exit cleanly on SIGTERM")
    e2e.check(ag.stop() == 0, "agent did not exit cleanly on SIGTERM")


if __name__ == "__main__":
    e2e.main([test_kill_both_sides_repeatedly])
