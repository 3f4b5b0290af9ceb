#!/usr/bin/env python3
"""Rotation torture with the real logrotate: 0 lines lost, 0 duplicated.

A writer thread appends numbered lines to app.log (chunks of 100 lines
with a millisecond between them, tens of thousands of lines a second),
reopening the path for every chunk (as an application does after the
SIGHUP of a postrotate script; a chunk never straddles two files), while
the real `logrotate -f` rotates it about ten times with `rotate 5`. The
agent tails only the live path, app.log. Every 7th line matches the
agent's rule; at the end the collector must hold every matching line
exactly once, in the order written:

- test_create: rename rotation (`create`): each renamed file must be
  read to its end through the descriptor the agent holds;
- test_copytruncate: `copytruncate`. logrotate copies the file and then
  truncates it; a line written between the copy and the truncation is
  in neither and is lost by logrotate itself, which no reader can help.
  So, for this test only, the writer pauses around each rotation (it
  stops, the rotation runs, it resumes). What the agent could see it
  must deliver: lines it had not read before the truncation are taken
  from the copy;
- test_kill_restart: `create`, with the agent SIGKILLed and restarted
  around rotations, one or two of them while it is down: at start it
  finds the file it was reading among the rotated names by identity
  and finishes it, reads the generations it never saw, then the new
  live file. With `rotate 5`, a rotation deletes the oldest generation,
  which may hold lines the agent had no time to read: on a loaded
  machine (ASan, load 20) an agent that is up for 0.7 s between kills
  may not get through megabytes of older generations. A generation
  deleted while the agent is down is gone; one deleted while it runs is
  held open, but the kill 0.3 s later closes it, read or not. Those
  lines are lost by logrotate, not by the agent: the test reads each
  generation logrotate is about to delete and allows exactly its lines
  to be missing (and says how many), unless a start left that
  generation out: every generation on disk at a start that the start
  does not name (finishing it, or reading it as unseen) must have been
  read to its end before, so its lines may never be missing. Any other
  missing line, e.g. in a generation still on disk at the end, is a
  reader bug. Each kill comes after the start's first scan ("started:"),
  so a start always gets to find what is on disk (nothing rotates during
  a start).
"""

import os
import re
import signal
import threading
import time

import tocsin_e2e as e2e

ROTATIONS = 10


def line(i):
    if i % 7 == 0:
        return "2026-11-26T10:00:00Z app ERROR request failed id=%08d\n" % i
    return "2026-11-26T10:00:00Z app INFO all is well id=%08d padding\n" % i


class Writer(threading.Thread):
    """Appends numbered lines to path in chunks, reopening it each time."""

    def __init__(self, path, chunk=100, gap=0.001):
        super().__init__(daemon=True)
        self.path = path
        self.chunk = chunk
        self.gap = gap  # between chunks: bounds the run's event count
        self.n = 0
        self.stop = threading.Event()
        self.paused = threading.Event()  # set: do not write
        self.idle = threading.Event()    # set by the writer while paused
        self.err = None

    def run(self):
        try:
            while not self.stop.is_set():
                if self.paused.is_set():
                    self.idle.set()
                    time.sleep(0.005)
                    continue
                self.idle.clear()
                data = "".join(line(self.n + k) for k in range(self.chunk))
                try:
                    # No O_CREAT: between logrotate's rename and its
                    # create the path does not exist; wait for it.
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                except FileNotFoundError:
                    time.sleep(0.001)
                    continue
                with os.fdopen(fd, "w") as f:
                    f.write(data)
                self.n += self.chunk
                time.sleep(self.gap)
        except Exception as ex:
            self.err = ex

    def pause(self):
        self.paused.set()
        e2e.wait_for(self.idle.is_set, 10, "the writer to pause")

    def resume(self):
        self.paused.clear()


def setup(env, mode):
    env.make_pki(agents=("web-01",))
    logs = os.path.join(env.dir, "logs")
    os.makedirs(logs)
    app = os.path.join(logs, "app.log")
    open(app, "w").close()
    env.collector_config()
    conf = env.agent_config("web-01", [
        (app, [("app-error", "ERROR request failed id=", "error")]),
    ], extra="sender: {backoff_min: 50ms, backoff_max: 500ms}\n"
             "tail: {poll_interval: 100ms, flush_timeout: 1s}\n")
    lr = env.write("logrotate.conf", (
        "%s {\n  rotate 5\n  %s\n  missingok\n  nocompress\n}\n" % (app, mode)))
    os.chmod(lr, 0o644)
    return app, conf, lr


def rotate(env, lr):
    env.run(["logrotate", "-f", "-s", os.path.join(env.dir, "logrotate.state"), lr])


def doomed(app):
    """The generation the next `rotate 5` rotation deletes: (inode,
    its matching lines), or None."""
    old = app + ".5"
    try:
        with open(old) as f:
            ino = os.fstat(f.fileno()).st_ino
            return ino, [m for m in f.read().split("\n") if " ERROR " in m]
    except FileNotFoundError:
        return None


def generations(app):
    """The rotated generations on disk: {name: their matching lines}."""
    d, base = os.path.split(app)
    out = {}
    for n in os.listdir(d):
        if n.startswith(base + "."):
            with open(os.path.join(d, n)) as f:
                out[n] = [m for m in f.read().split("\n") if " ERROR " in m]
    return out


def deleted(app, gen):
    """Whether the rotation just done deleted gen (from doomed)."""
    if gen is None:
        return False
    d = os.path.dirname(app)
    return all(os.stat(os.path.join(d, n)).st_ino != gen[0] for n in os.listdir(d))


def check_delivered(env, app, total, lost_ok=()):
    """Every matching line arrived once, in order; lost_ok: lines logrotate
    deleted before the agent could read them, allowed to be missing."""
    want = [line(i).rstrip("\n") for i in range(total) if i % 7 == 0]
    lost_ok = set(lost_ok)

    def delivered():
        return len(env.events()) >= len(want)

    def settled():
        # With lines allowed to be missing, the count cannot tell when all
        # arrived: wait until nothing new came for 10 s.
        n = len(env.events())
        if n != settled.n:
            settled.n, settled.t = n, time.monotonic()
        return n >= len(want) or time.monotonic() - settled.t > 10

    settled.n, settled.t = -1, time.monotonic()
    try:
        e2e.wait_for(delivered if not lost_ok else settled, 240,
                     "%d events at the collector" % len(want), interval=1)
    except e2e.TestFailure:
        pass  # the comparison below says what is missing
    time.sleep(3)  # anything beyond the expected count would be a duplicate
    events = env.events()
    got = sorted((ev for ev in events if ev["source"] == app), key=lambda ev: ev["seq"])
    msgs = [ev["message"] for ev in got]
    if lost_ok:
        gs = set(msgs)
        gone = [m for m in want if m not in gs and m in lost_ok]
        if gone:
            print("%d matching lines (of %d in generations logrotate deleted) were "
                  "deleted before the agent read them: not counted as lost"
                  % (len(gone), len(lost_ok)))
        want = [m for m in want if m in gs or m not in lost_ok]
    if msgs != want:
        gs, ws = set(msgs), set(want)
        missing = [m for m in want if m not in gs]
        extra = [m for m in msgs if m not in ws]
        e2e.check(False, "%d expected, %d stored; %d missing (first %r), %d unexpected, "
                  "%d duplicated, order %s"
                  % (len(want), len(msgs), len(missing), missing[:3], len(extra),
                     len(msgs) - len(gs), "ok" if sorted(msgs) == msgs else "wrong"))
    e2e.check(len(events) == len(want), "%d events stored, %d expected"
              % (len(events), len(want)))
    print("%d lines written, %d matching lines delivered exactly once, in order"
          % (total, len(want)))


def run_rotations(env, mode, pause_writer):
    app, conf, lr = setup(env, mode)
    col = env.collector().start()
    col.wait_log("listening on")
    ag = env.agent(conf).start()
    ag.wait_log("app.log")
    w = Writer(app)
    w.start()
    for _ in range(ROTATIONS):
        time.sleep(0.4)
        if pause_writer:
            w.pause()
            time.sleep(0.3)  # let the agent read what was written
        rotate(env, lr)
        if pause_writer:
            w.resume()
    time.sleep(0.3)
    w.stop.set()
    w.join()
    e2e.check(w.err is None, "writer failed: %r" % w.err)
    check_delivered(env, app, w.n)
    e2e.check(ag.stop() == 0, "agent did not exit cleanly on SIGTERM")
    e2e.check(col.stop() == 0, "collector did not exit cleanly on SIGTERM")


def test_create(env):
    run_rotations(env, "create", False)


def test_copytruncate(env):
    run_rotations(env, "copytruncate", True)


def test_kill_restart(env):
    app, conf, lr = setup(env, "create")
    col = env.collector().start()
    col.wait_log("listening on")

    lost_ok = []  # lines of the generations logrotate deleted
    read_before = set()  # lines of generations a start took as read

    def start():
        # Wait for this start's first scan (its "started:" line); no
        # rotation runs in between, so what it saw is what is on disk.
        gens = generations(app)
        at = len(ag.log())
        ag.start()
        ag.wait_log(r"tocsin-agent\[\d+\]: started:", timeout=60, after=at)
        named = {os.path.basename(p)
                 for p in re.findall(r"\(([^,()]+), offset \d+\)", ag.log()[at:])}
        for name, lines in gens.items():
            if name not in named:
                read_before.update(lines)

    def rotate_gen():
        gen = doomed(app)
        rotate(env, lr)
        if deleted(app, gen):
            lost_ok.extend(gen[1])

    ag = env.agent(conf)
    start()
    w = Writer(app)
    w.start()
    # Rotations while running, and one or two while the agent is down.
    for k in range(6):
        time.sleep(0.4)
        rotate_gen()
        time.sleep(0.3)
        ag.kill(signal.SIGKILL)
        for _ in range(1 + k % 2):
            time.sleep(0.2)
            rotate_gen()
        time.sleep(0.2)
        start()
    time.sleep(0.5)
    w.stop.set()
    w.join()
    e2e.check(w.err is None, "writer failed: %r" % w.err)
    check_delivered(env, app, w.n, [m for m in lost_ok if m not in read_before])
    e2e.check(ag.stop() == 0, "agent did not exit cleanly on SIGTERM")
    e2e.check(col.stop() == 0, "collector did not exit cleanly on SIGTERM")


if __name__ == "__main__":
    e2e.main([test_create, test_copytruncate, test_kill_restart])
