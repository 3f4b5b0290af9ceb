#!/usr/bin/env python3
"""Storage under a hostile or careless reader and a full disk.

A reader of the collector's store (tocsinctl, whose output may go to a
pager nobody scrolls) must not pin the WAL: tocsinctl reads in short
snapshots, the WAL is truncated once a checkpoint completes, and a
reader that does pin it (here Python's sqlite3 holding a read
transaction) is logged. The agent must recover by itself from a full
state_dir filesystem, losing and duplicating nothing."""

import os
import sqlite3
import subprocess
import tempfile
import threading
import time

import tocsin_e2e as e2e

MiB = 1 << 20


def wal_size(env):
    try:
        return os.path.getsize(os.path.join(env.dir, "state", "collector.db-wal"))
    except FileNotFoundError:
        return 0


class Writer:
    """Appends numbered lines to a log file from a thread, `rate` lines a
    second, until stopped. Lines carry a unique id: "L<n> <padding>"."""

    def __init__(self, path, rate, pad=150):
        self.path = path
        self.rate = rate
        self.pad = "x" * pad
        self.n = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        tick = 0.02
        with open(self.path, "a") as f:
            while not self.stop_ev.is_set():
                k = max(1, int(self.rate * tick))
                f.write("".join("L%d %s\n" % (self.n + i, self.pad) for i in range(k)))
                f.flush()
                self.n += k
                time.sleep(tick)

    def start(self):
        self.t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.t.join()


def ingest_setup(env, rate):
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [(log, [("line", "^L", "info")])])
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag, Writer(log, rate).start()


def stored_events(env):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(env.dir, "state", "collector.db"),
                         uri=True)
    try:
        return db.execute("SELECT coalesce(sum(n), 0) FROM batches").fetchone()[0]
    finally:
        db.close()


def test_stalled_tocsinctl_does_not_pin_wal(env):
    """`tocsinctl events list | less` with nobody reading: the listing
    blocks on a full pipe; ingest goes on, the WAL stays bounded."""
    col, ag, w = ingest_setup(env, rate=3000)
    try:
        # Enough events that the listing overflows a pipe (64 KiB) many
        # times over.
        e2e.wait_for(lambda: stored_events(env) >= 5000, 60, "5000 events stored",
                     interval=0.5)
        at_start = stored_events(env)
        reader = subprocess.Popen([e2e.CTL, "-c", env.collector_conf, "events", "list",
                                   "--limit", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL)
        env.cleanups.append(reader.kill)
        time.sleep(2)
        e2e.check(reader.poll() is None, "the listing finished: it should be blocked "
                                         "on its full pipe")
        before = stored_events(env)
        peak = 0
        t_end = time.monotonic() + 25
        while time.monotonic() < t_end:
            peak = max(peak, wal_size(env))
            time.sleep(0.1)
        grew = stored_events(env) - before
        print("stalled reader: %d events ingested in 25 s, WAL peak %.1f MiB"
              % (grew, peak / MiB))
        e2e.check(reader.poll() is None, "the listing should still be blocked")
        # Without chunked reads, main's WAL grew past 100 MiB here.
        e2e.check(grew >= 20000, "ingest too slow to tell (%d events in 25 s)" % grew)
        e2e.check(peak < 48 * MiB,
                  "WAL reached %.1f MiB behind a stalled tocsinctl" % (peak / MiB))
        # The listing is still correct: drain it now.
        out, _ = reader.communicate(timeout=120)
        e2e.check(reader.returncode == 0, "tocsinctl exited %d" % reader.returncode)
        ids = []
        for l in out.decode().splitlines():
            f = l.split(" ", 5)  # time host seq severity rule message
            if len(f) == 6 and f[4] == "line":
                ids.append(int(f[5].split(" ", 1)[0][1:]))
        # One snapshot, that of the start, in order, each line once.
        e2e.check(at_start <= len(ids) <= before and ids == list(range(len(ids))),
                  "listing is not the first events in order, once each (%d lines, "
                  "%d stored at its start, first ids %r)" % (len(ids), at_start, ids[:5]))
    finally:
        w.stop()


def test_pinned_wal_is_logged_then_truncated(env):
    """A reader that really holds a snapshot (sqlite3) lets the WAL grow:
    the collector says so; once it is gone the WAL is truncated."""
    col, ag, w = ingest_setup(env, rate=3000)
    db = os.path.join(env.dir, "state", "collector.db")
    try:
        e2e.wait_for(lambda: stored_events(env) >= 1000, 60, "1000 events stored",
                     interval=0.5)
        pin = sqlite3.connect(db, isolation_level=None)
        env.cleanups.append(pin.close)
        pin.execute("BEGIN")
        pin.execute("SELECT count(*) FROM batches").fetchone()
        col.wait_log(r"checkpoint cannot complete for \d+ s, WAL is \d+ MiB.*"
                     r"a reader holds", timeout=90)
        big = wal_size(env)
        # STORE_WAL_KEEP_BYTES: what a complete checkpoint cuts it to.
        keep = 32 * MiB
        e2e.check(big > 2 * keep, "WAL only %.1f MiB while pinned" % (big / MiB))
        pin.execute("COMMIT")
        pin.close()
        # Slow down so that a fresh WAL stays under the limit a while.
        w.rate = 50
        e2e.wait_for(lambda: wal_size(env) <= keep, 60,
                     "WAL truncated after the reader left (it was %.1f MiB)" % (big / MiB),
                     interval=0.05)
        col.wait_log("WAL checkpoint complete again", timeout=30)
    finally:
        w.stop()


def mount_tmpfs(env, path, size):
    """A tiny tmpfs at path, unmounted (lazily) at cleanup."""
    os.makedirs(path, exist_ok=True)
    env.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path])
    env.cleanups.append(lambda: subprocess.run(["umount", "-l", path]))


def line_ids(evs):
    """Line ids of the "line" events; duplicates kept."""
    return [int(e["message"].split(" ", 1)[0][1:]) for e in evs if e["rule"] == "line"]


def test_agent_recovers_from_full_state_dir(env):
    """The agent's state_dir fills up while the collector is down. Once
    the collector is back, the agent drains its spool, frees the disk (its
    WAL) and goes on tailing by itself: every line arrives exactly once."""
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    state = os.path.join(env.dir, "state", "web-01")
    mount_tmpfs(env, state, "2m")
    # Passes of 64 KiB of log: a pass must fit the 2 MiB filesystem.
    conf = env.agent_config("web-01", [(log, [("line", "^L", "info")])],
                            extra="tail: {read_max_bytes: 64KiB}\n")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    e2e.check(col.stop() == 0, "collector exit status")
    ag.wait_log("link down")
    # About 300 bytes an event in the spool: 20000 lines are three times
    # the filesystem.
    n = 0
    pad = "y" * 150
    with open(log, "a") as f:
        for _ in range(20):
            f.write("".join("L%d %s\n" % (n + i, pad) for i in range(1000)))
            f.flush()
            n += 1000
            time.sleep(0.1)
    ag.wait_log(r"cannot spool: No space left on device", timeout=60)
    # The agent stops short of a literally full disk (it keeps room to
    # checkpoint); most of it is used all the same.
    st = os.statvfs(state)
    e2e.check(st.f_bavail * st.f_frsize < 1 << 20,
              "state_dir not filled: %d bytes free" % (st.f_bavail * st.f_frsize))
    time.sleep(2)  # the tail retries against the full disk meanwhile
    col.start()
    got = e2e.wait_for(lambda: (lambda ids: len(ids) >= n and ids)(line_ids(env.events())),
                       180, "%d lines after the collector came back" % n, interval=1)
    # The tail goes on by itself.
    with open(log, "a") as f:
        f.write("".join("L%d %s\n" % (n + i, pad) for i in range(500)))
    n += 500
    got = e2e.wait_for(lambda: (lambda ids: len(ids) >= n and ids)(line_ids(env.events())),
                       60, "%d lines after the recovery" % n, interval=0.5)
    e2e.check(sorted(got) == list(range(n)),
              "lines lost or duplicated: %d received, %d unique, %d expected"
              % (len(got), len(set(got)), n))
    # It gave the WAL's space back by itself once the spool drained.
    ag.wait_log(r"drained after running out of disk space; WAL truncated")


def test_disk_filled_by_another_program(env):
    """Another program fills the agent's state_dir filesystem to the last
    byte while lines keep coming. The agent says so in a few lines, not
    one per retry, keeps its offset, and once the filler is gone every
    line arrives exactly once without a restart."""
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    state = os.path.join(env.dir, "state", "web-01")
    mount_tmpfs(env, state, "4m")
    conf = env.agent_config("web-01", [(log, [("line", "^L", "info")])],
                            extra="tail: {read_max_bytes: 64KiB}\n")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    pad = "z" * 150
    with open(log, "a") as f:
        f.write("".join("L%d %s\n" % (i, pad) for i in range(100)))
    e2e.wait_for(lambda: len(line_ids(env.events())) >= 100, 30, "the first 100 lines")
    # Fill what is left, byte for byte, as a runaway program would.
    filler = os.path.join(state, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    for chunk in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)
    before = len(ag.log())
    n = 100
    for _ in range(20):
        with open(log, "a") as f:
            f.write("".join("L%d %s\n" % (n + i, pad) for i in range(50)))
        n += 50
        time.sleep(0.3)
    e2e.check(ag.alive(), "agent died on a full disk")
    said = [l for l in ag.log()[before:].splitlines()
            if "No space left" in l or "disk is full" in l or "cannot spool" in l]
    e2e.check(1 <= len(said) <= 6,
              "%d lines about the full disk in 6 s (want a few, not one "
              "per retry):\n%s" % (len(said), "\n".join(said[:10])))
    os.unlink(filler)
    got = e2e.wait_for(lambda: (lambda ids: len(ids) >= n and ids)(line_ids(env.events())),
                       120, "%d lines once the filler is gone" % n, interval=0.5)
    e2e.check(sorted(got) == list(range(n)),
              "lines lost or duplicated: %d received, %d unique, %d expected"
              % (len(got), len(set(got)), n))


def test_collector_full_disk_loses_nothing(env):
    """The collector's store fills its filesystem: commits fail and
    nothing is acked, the agent keeps the events; once there is room
    again every line is stored exactly once (existing behaviour, checked
    with the WAL truncation of issue 9)."""
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    cstate = os.path.join(env.dir, "cstate")
    # Room for a fresh store (64 KiB pages: schema 9's hint tables added
    # five) and its migration's WAL; 30,000 lines still fill it.
    mount_tmpfs(env, cstate, "4m")
    conf = env.collector_config()
    with open(conf) as f:
        text = f.read().replace("state/collector.db", "cstate/collector.db")
    env.write("collector.yaml", text)
    col = env.collector().start()
    col.wait_log("listening on")
    aconf = env.agent_config("web-01", [(log, [("line", "^L", "info")])])
    ag = env.agent(aconf).start()
    ag.wait_log("connected to")
    n = 0
    pad = "z" * 150
    with open(log, "a") as f:
        for _ in range(30):
            f.write("".join("L%d %s\n" % (n + i, pad) for i in range(1000)))
            f.flush()
            n += 1000
            time.sleep(0.05)
    col.wait_log(r"store: commit failed: database or disk is full", timeout=60)
    time.sleep(2)
    env.run(["mount", "-o", "remount,size=64m", cstate])
    got = e2e.wait_for(lambda: (lambda ids: len(ids) >= n and ids)(line_ids(env.events())),
                       180, "%d lines once the store has room" % n, interval=1)
    e2e.check(sorted(got) == list(range(n)),
              "lines lost or duplicated: %d received, %d unique, %d expected"
              % (len(got), len(set(got)), n))


def can_mount():
    """Whether this process may mount a tmpfs (root, not in a sandbox
    that forbids it); the reason when not."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    d = tempfile.mkdtemp(prefix="tocsin-sec-mnt-")
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                           capture_output=True)
        if p.returncode != 0:
            return "mount -t tmpfs not permitted: %s" % p.stderr.decode().strip()
        subprocess.run(["umount", d])
        return None
    finally:
        os.rmdir(d)


if __name__ == "__main__":
    tests = [
        test_stalled_tocsinctl_does_not_pin_wal,
        test_pinned_wal_is_logged_then_truncated,
    ]
    why = can_mount()
    if why is None:
        tests.append(test_agent_recovers_from_full_state_dir)
        tests.append(test_disk_filled_by_another_program)
        tests.append(test_collector_full_disk_loses_nothing)
    try:
        e2e.main(tests)
    except SystemExit as ex:
        if ex.code == 0 and why is not None:
            e2e.skip("the full-disk tests: %s "
                     "(the other tests passed)" % why)
        raise
