#!/usr/bin/env python3
"""The journald input against a live systemd-journald.

Each test starts its own journald as a *journal namespace* instance
(`systemd-journald NAMESPACE`, what systemd-journald@NAMESPACE.service
runs), so it needs no systemd as PID 1 and leaves the host's journal
alone: the instance listens on /run/systemd/journal.NAMESPACE/{socket,
stdout,dev-log} and writes /run/log/journal/MACHINE_ID.NAMESPACE, and the
agent reads it with `journald: [{namespace: NAMESPACE}]`. Entries are
sent the way programs send them: native-protocol datagrams to the
namespace's socket, and lines on a stdout stream connection with the
header PID 1 writes for a service's stdout.

What the host must have, and what the test changes on it:
- systemd-journald (Debian package `systemd`); without it the test is
  skipped (exit 77). It must run as root: journald binds sockets under
  /run/systemd and reads the trusted fields (_PID, _SYSTEMD_UNIT, ...)
  of its peers.
- /etc/machine-id: journald names the journal directory after it, and
  sd-journal opened SD_JOURNAL_LOCAL_ONLY (as the agent does) reads only
  the directories of this machine ID. With an empty file journald still
  runs but writes /var/log/journal/.NAMESPACE, which no local reader
  finds. Docker images often have none (the `systemd` package's postinst
  creates one). If it is missing or not a machine ID, the test writes a
  random one for its run and puts the old state back (no file, or the
  old contents) when it ends.
- Configuration for the instance comes from a drop-in in
  /run/systemd/journald@NAMESPACE.conf.d/ (volatile storage, no rate
  limit, no forwarding to syslog, console or wall). At the end the
  instance is stopped (SIGTERM, then SIGKILL) and its drop-in, sockets
  and journal files are removed. The instance is started with
  PR_SET_PDEATHSIG, so it dies with the test even if the test is killed;
  a leftover of a test killed that way (namespace tocsin-e2e-PID-N of a
  PID that no longer runs) is removed by the next run.

_SYSTEMD_UNIT is a trusted field: journald drops it from what a client
sends, and derives it from the sender's cgroup. Without systemd as PID 1
a test can still get it attached, in two ways, both used here:
- a stdout stream whose header names a unit (the header PID 1 writes
  for StandardOutput=journal). journald takes that unit only as a
  fallback: from root, for a PID it has not seen yet (it caches what it
  learnt per PID), whose cgroup is the root cgroup as journald sees it
  or cannot be read. So each stream comes from a fresh child process; in
  a container without systemd every process is in the root cgroup. In a
  login session on a systemd host journald attaches the session's scope
  instead.
- native datagrams from a process moved into a cgroup named like the
  unit, as for any service. This needs a writable cgroup2 file system,
  which an unprivileged container does not have: the test then says so
  and relies on the streams.
Which unit journald really gave each entry is read back with
`journalctl --namespace -o json`, and each input's expected share is
computed from that; the test fails if no entry got the followed unit
(the unit filter would go untested).

journald creates /run/log/journal if it is missing; the test removes it
again (if empty) when it did not exist before.
"""

import collections
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import uuid

import tocsin_e2e as e2e

JOURNALD = next((p for p in ("/lib/systemd/systemd-journald",
                             "/usr/lib/systemd/systemd-journald")
                 if os.access(p, os.X_OK)), None)
NS_PREFIX = "tocsin-e2e-"
APP = "tocsin-e2e-app.service"      # the unit the "units" input follows
OTHER = "tocsin-e2e-other.service"  # a unit it does not follow
_ns_count = 0
LIVE = []  # every Journald made, for the last-resort cleanup at exit


# --- host prerequisites ---------------------------------------------------

class MachineId:
    """/etc/machine-id, made for the run if the host has none."""

    PATH = "/etc/machine-id"

    def __init__(self):
        self.restore = None
        try:
            with open(self.PATH) as f:
                self.old = f.read()
        except FileNotFoundError:
            self.old = None
        if self.old is not None and re.fullmatch(r"[0-9a-f]{32}\n?", self.old):
            self.id = self.old.strip()
            return
        self.id = uuid.uuid4().hex
        with open(self.PATH, "w") as f:
            f.write(self.id + "\n")
        self.restore = self.old if self.old is not None else False
        print("note: %s was %s; wrote %s for this run"
              % (self.PATH, "missing" if self.old is None
                 else "%r, not a machine ID" % self.old, self.id))

    def close(self):
        if self.restore is None:
            return
        if self.restore is False:
            os.unlink(self.PATH)
        else:
            with open(self.PATH, "w") as f:
                f.write(self.restore)
        self.restore = None


def _pdeathsig():
    # Runs in the child before exec: die with the test process.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _rm(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _ns_paths(ns, mid):
    return ["/run/systemd/journal.%s" % ns,
            "/run/systemd/journald@%s.conf.d" % ns,
            "/run/log/journal/%s.%s" % (mid, ns),
            "/var/log/journal/%s.%s" % (mid, ns)]


def sweep_stale(mid):
    """Remove what a killed earlier run left (its PID is gone)."""
    pats = [p.replace("NS", NS_PREFIX + "*")
            for p in _ns_paths("NS", "*")]
    for pat in pats:
        for path in glob.glob(pat):
            m = re.search(re.escape(NS_PREFIX) + r"(\d+)-\d+", path)
            if not m:
                continue
            try:
                os.kill(int(m.group(1)), 0)
                continue  # that run is alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            _rm(path)


# --- a private journald ---------------------------------------------------

def native_entry(fields):
    """The native protocol: KEY=value lines, or KEY, newline, le64 size,
    data, newline for a value that holds a newline or is binary."""
    out = b""
    for k, v in fields:
        v = v if isinstance(v, bytes) else str(v).encode()
        if b"\n" in v:
            out += k.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n"
        else:
            out += k.encode() + b"=" + v + b"\n"
    return out


class Journald:
    """systemd-journald for one namespace, private to a test. It is one
    of env.daemons (killed, and its log shown on failure, like the
    others); its files are removed by env.cleanup."""

    # True: the default instance (no namespace), which only a test in a
    # private mount namespace may start (test_journald_default.py).
    default_instance = False

    def __init__(self, env, mid):
        global _ns_count
        _ns_count += 1
        self.env = env
        self.name = "journald"
        if self.default_instance:
            self.ns = None
            self.paths = ["/run/systemd/journal",
                          "/run/systemd/journald.conf.d",
                          "/run/log/journal/%s" % mid.id,
                          "/var/log/journal/%s" % mid.id]
        else:
            self.ns = "%s%d-%d" % (NS_PREFIX, os.getpid(), _ns_count)
            self.paths = _ns_paths(self.ns, mid.id)
        self.rundir, self.dropin = self.paths[0], self.paths[1]
        self.socket = os.path.join(self.rundir, "socket")
        self.stdout = os.path.join(self.rundir, "stdout")
        self.log_path = os.path.join(env.dir, "journald.log")
        self.proc = None
        self.dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        env.daemons.append(self)
        env.cleanups.append(self.cleanup)
        LIVE.append(self)

    def start(self):
        os.makedirs(self.dropin, exist_ok=True)
        with open(os.path.join(self.dropin, "tocsin-e2e.conf"), "w") as f:
            f.write("[Journal]\n"
                    "Storage=volatile\n"
                    "RateLimitIntervalSec=0\n"
                    "ForwardToSyslog=no\nForwardToKMsg=no\n"
                    "ForwardToConsole=no\nForwardToWall=no\n"
                    "ReadKMsg=no\n")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([JOURNALD] + ([self.ns] if self.ns else []),
                                     stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL,
                                     preexec_fn=_pdeathsig)
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise e2e.TestFailure("systemd-journald %s exited with %s; "
                                      "see %s" % (self.ns, self.proc.returncode,
                                                  self.log_path))
            if not os.path.exists(self.socket):
                return False
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.stdout)
                return True
            except OSError:
                return False
            finally:
                s.close()

        e2e.wait_for(ready, 20, "systemd-journald %s to listen" % self.ns)
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self):
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def cleanup(self):
        """Idempotent: env.cleanup and the exit path both call it."""
        try:
            self.stop()
        finally:
            self.kill()
            self.dgram.close()
            for p in self.paths:
                _rm(p)

    def send(self, *fields):
        """One entry as a native-protocol datagram."""
        self.dgram.sendto(native_entry(fields), self.socket)


STREAM_CHILD = r"""
import json, socket, sys
path, ident, unit, prio, lines = sys.argv[1:6]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
# identifier, unit id, default priority, level prefix on, forward to
# syslog, kmsg, console off: the header PID 1 writes.
s.sendall(("%s\n%s\n%s\n1\n0\n0\n0\n" % (ident, unit, prio)).encode())
for line in json.loads(lines):
    s.sendall((line + "\n").encode())
s.close()
"""


def stdout_stream(jd, identifier, unit, lines, priority=6):
    """Lines ("<N>text" for priority N) on a stdout stream connection
    whose header names unit, from a child process of its own: journald
    caches what it learnt about a sender by PID, and the header's unit is
    only its fallback for a sender it has not seen, in the root cgroup
    (or gone)."""
    subprocess.run([sys.executable, "-c", STREAM_CHILD, jd.stdout, identifier,
                    unit, str(priority), json.dumps(lines)],
                   check=True, timeout=60)


def ns_args(jd):
    """journalctl's option for jd's namespace (none for the default)."""
    return ["--namespace=" + jd.ns] if jd.ns else []


def reading(jd):
    """The agent's log line once input live reads jd's journal."""
    if jd.ns:
        return r"journal live: reading namespace %s" % re.escape(jd.ns)
    return r"journal live: reading \("


def journal_entries(jd):
    """What journald stored, as journalctl shows it: the oracle for
    which entries carry which unit and priority."""
    p = subprocess.run(["journalctl"] + ns_args(jd) + ["-o", "json",
                                                    "--no-pager"],
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        raise e2e.TestFailure("journalctl %s: %s"
                              % (" ".join(ns_args(jd)), p.stderr.decode()))
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l]


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


CG_SENDER = r"""
import socket, sys
sock, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"MESSAGE=cg n=%d\nPRIORITY=%d\nSYSLOG_IDENTIFIER=tocsin-e2e-cg\n"
             % (i, i % 8), sock)
"""


def send_from_unit_cgroup(jd, unit, n):
    """Native datagrams from a process in cgroup UNIT, so that journald
    gives them _SYSTEMD_UNIT=UNIT. Returns False (and says why) where no
    cgroup can be made."""
    root = cgroup2_mount()
    if root is None:
        print("note: no cgroup2 file system: unit from cgroup not tested")
        return False
    path = os.path.join(root, unit)
    try:
        os.mkdir(path)
    except OSError as e:
        print("note: cannot create cgroup %s (%s): unit from cgroup not "
              "tested, only from stdout streams" % (path, e.strerror))
        return False
    procs = os.path.join(path, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    try:
        subprocess.run([sys.executable, "-c", CG_SENDER, jd.socket, str(n)],
                       preexec_fn=enter, check=True, timeout=60)
    finally:
        try:
            os.rmdir(path)
        except OSError:
            time.sleep(0.5)
            os.rmdir(path)
    return True


# --- the agent side ------------------------------------------------------

def start_agent(env, jd, inputs):
    """Collector and agent; inputs is the journald: block (YAML)."""
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    nsline = "    namespace: %s\n" % jd.ns if jd.ns else ""
    conf = env.agent_config("web-01", [], extra="journald:\n" + inputs
                            % {"nsline": nsline})
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag


def journal_events(env, source):
    return [e for e in env.events()
            if e["kind"] == "log" and e["source"] == source]


def numbered(evs, tag):
    """{n: [events]} for messages "TAG n=N"."""
    out = collections.defaultdict(list)
    rx = re.compile(r"%s n=(\d+)$" % re.escape(tag))
    for e in evs:
        m = rx.match(e["message"])
        if m:
            out[int(m.group(1))].append(e)
    return out


def wait_numbered(env, source, tag, want, timeout=60):
    return e2e.wait_for(
        lambda: len(numbered(journal_events(env, source), tag)) >= want,
        timeout, "%d '%s' entries from input %s" % (want, tag, source),
        interval=0.3)


def exact(env, source, tag, want_ns):
    """Every n of want_ns arrived exactly once; returns (lost, dup)."""
    got = numbered(journal_events(env, source), tag)
    lost = sorted(set(want_ns) - set(got))
    dup = sorted(n for n, evs in got.items() if len(evs) > 1)
    extra = sorted(set(got) - set(want_ns))
    e2e.check(not extra, "input %s: unexpected '%s' entries %s"
              % (source, tag, extra[:20]))
    return lost, dup


SEV = {0: "critical", 1: "critical", 2: "critical", 3: "error", 4: "warning"}


# --- tests ---------------------------------------------------------------

INPUTS = """  - name: live
%(nsline)s    priority: warning
    start_at: beginning
  - name: units
%(nsline)s    units: [tocsin-e2e-app.service]
    start_at: beginning
"""


OURS = re.compile(r"(native|noprio|app|other|cg) n=(\d+)$")


def stored_entries(jd):
    """{(tag, n): (PRIORITY or None, _SYSTEMD_UNIT or None)}."""
    out = {}
    for ent in journal_entries(jd):
        m = OURS.match(ent.get("MESSAGE") or "") if isinstance(
            ent.get("MESSAGE"), str) else None
        if m:
            p = ent.get("PRIORITY")
            out[(m.group(1), int(m.group(2)))] = (
                int(p) if p is not None else None, ent.get("_SYSTEMD_UNIT"))
    return out


def got_keys(env, source):
    """collections.Counter of (tag, n) of one input's events."""
    got = collections.Counter()
    for e in journal_events(env, source):
        m = OURS.match(e["message"])
        if m:
            got[(m.group(1), int(m.group(2)))] += 1
    return got


def test_filters(env):
    jd = Journald(env, env.mid).start()
    col, ag = start_agent(env, jd, INPUTS)
    ag.wait_log(reading(jd))

    # Native datagrams (no unit), every priority, and one entry without
    # PRIORITY (kept only by an input at debug).
    for n in range(64):
        jd.send(("MESSAGE", "native n=%d" % n), ("PRIORITY", n % 8),
                ("SYSLOG_IDENTIFIER", "tocsin-e2e"))
    jd.send(("MESSAGE", "noprio n=0"), ("SYSLOG_IDENTIFIER", "tocsin-e2e"))
    # stdout streams of two units, every priority; the last app line at
    # the header's default priority (6).
    stdout_stream(jd, "app", APP, ["<%d>app n=%d" % (n % 8, n)
                                   for n in range(16)] + ["app n=16"])
    stdout_stream(jd, "other", OTHER, ["<%d>other n=%d" % (n % 8, n)
                                       for n in range(16)])
    cg = send_from_unit_cgroup(jd, APP, 16)
    total = 64 + 1 + 17 + 16 + (16 if cg else 0)

    # The oracle: what journald stored, with the unit and priority it
    # gave each entry. Each input must deliver exactly its share.
    stored = e2e.wait_for(lambda: (lambda st: len(st) == total and st)(
        stored_entries(jd)), 30, "journald to store %d entries" % total)
    sent_prio = {("native", n): n % 8 for n in range(64)}
    sent_prio.update({("app", n): n % 8 for n in range(16)})
    sent_prio.update({("other", n): n % 8 for n in range(16)})
    sent_prio.update({("cg", n): n % 8 for n in range(16 if cg else 0)})
    sent_prio[("app", 16)] = 6
    sent_prio[("noprio", 0)] = None
    e2e.check({k: p for k, (p, u) in stored.items()} == sent_prio,
              "journald stored other priorities than were sent")
    want_live = {k for k, (p, u) in stored.items() if p is not None and p <= 4}
    want_units = {k for k, (p, u) in stored.items() if u == APP}
    how = []
    if stored[("app", 0)][1] == APP:
        how.append("stdout stream header")
    if cg and stored[("cg", 0)][1] == APP:
        how.append("cgroup")
    e2e.check(want_units, "journald attached _SYSTEMD_UNIT=%s to no entry "
              "(stdout stream: %r; cgroup sender: %s): the unit filter "
              "cannot be tested here" % (APP, stored[("app", 0)][1],
                                         "yes" if cg else "not possible"))
    e2e.check(all(stored[("other", n)][1] != APP for n in range(16)), "")

    e2e.wait_for(lambda: set(got_keys(env, "live")) >= want_live
                 and set(got_keys(env, "units")) >= want_units, 60,
                 "%d entries on input live and %d on input units"
                 % (len(want_live), len(want_units)), interval=0.3)
    time.sleep(2)  # anything a filter lets through wrongly arrives too
    for source, want in (("live", want_live), ("units", want_units)):
        got = got_keys(env, source)
        e2e.check(set(got) == want, "input %s: missing %s, unexpected %s"
                  % (source, sorted(want - set(got))[:10],
                     sorted(set(got) - want)[:10]))
        dup = sorted(k for k, c in got.items() if c > 1)
        e2e.check(not dup, "input %s: duplicated %s" % (source, dup[:10]))

    live = journal_events(env, "live")
    e2e.check(all(e["severity"] != "info" for e in live),
              "priority 5..7 passed priority: warning: %r"
              % [e["message"] for e in live if e["severity"] == "info"][:5])
    for n, (e,) in numbered(live, "native").items():
        e2e.check(e["severity"] == SEV[n % 8], "native n=%d (priority %d) "
                  "has severity %s" % (n, n % 8, e["severity"]))
        e2e.check(e["rule"] == "tocsin-e2e", repr(e))
        e2e.check(e["fields"].get("identifier") == "tocsin-e2e"
                  and "unit" not in e["fields"]
                  and int(e["fields"]["pid"]) == os.getpid(), repr(e))
        e2e.check(abs(e["event_ts"] / 1e9 - time.time()) < 300, repr(e))
    for e in journal_events(env, "units"):
        e2e.check(e["fields"].get("unit") == APP and e["rule"] == APP,
                  repr(e))
    print("filters: %d entries stored; input live (priority <= warning) "
          "%d, input units (%s) %d; journald gave the unit from: %s"
          % (total, len(want_live), APP, len(want_units), ", ".join(how)))


def send_resume(jd, first, last, paced=True):
    """Entries "resume n=first..last-1" at priority err; paced: about
    one per millisecond, as a busy service logs."""
    for n in range(first, last):
        jd.send(("MESSAGE", "resume n=%d" % n), ("PRIORITY", 3),
                ("SYSLOG_IDENTIFIER", "tocsin-e2e"))
        if paced and n % 20 == 0:
            time.sleep(0.02)


def count_resume(env):
    return len(numbered(journal_events(env, "live"), "resume"))


def committed_at(env, jd, source="live"):
    """The MESSAGE of the entry at the cursor the agent committed for an
    input (read from its spool after a kill), or None."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        env.dir, "state", "web-01", "spool.db"), uri=True)
    try:
        row = db.execute("SELECT cursor FROM cursors WHERE key = ?",
                         ("journal:" + source,)).fetchone()
    finally:
        db.close()
    if row is None:
        return None
    p = subprocess.Popen(["journalctl"] + ns_args(jd) + ["-o", "json",
                          "--cursor=" + row[0], "--no-pager"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = p.stdout.readline()
    p.kill()
    p.wait()
    return json.loads(first).get("MESSAGE") if first else None


def test_kill_resume(env):
    """SIGKILL while reading, twice, with a journal rotation and a
    backlog written while the agent is down, then SIGHUP reloads while
    entries come in: every entry exactly once."""
    jd = Journald(env, env.mid).start()
    col, ag = start_agent(env, jd, INPUTS)
    ag.wait_log(reading(jd))
    n1, n2, n3, n4 = 2000, 12000, 14000, 16000

    # First kill: while entries are being written and read.
    t = threading.Thread(target=send_resume, args=(jd, 0, n1))
    t.start()
    e2e.wait_for(lambda: count_resume(env) >= 300, 60,
                 "300 entries before the kill", interval=0.1)
    sending = t.is_alive()
    ag.kill(signal.SIGKILL)
    at_kill = count_resume(env)
    cur1 = committed_at(env, jd)
    t.join()
    # While the agent is down: rotate the journal, so that the stored
    # cursor is in an archived file, and write a backlog.
    jd.signal(signal.SIGUSR2)
    e2e.wait_for(lambda: glob.glob(os.path.join(jd.paths[2], "system@*")),
                 20, "journald to rotate its file")
    send_resume(jd, n1, n2, paced=False)

    # Second kill: in the middle of reading the backlog, while new
    # entries keep coming.
    mark = len(ag.log())
    ag.start()
    ag.wait_log(r"journal live: resuming after the stored cursor", after=mark)
    t = threading.Thread(target=send_resume, args=(jd, n2, n3))
    t.start()
    time.sleep(0.1)  # counting on the collector is slower than the agent
    ag.kill(signal.SIGKILL)
    at_kill2 = count_resume(env)
    cur2 = committed_at(env, jd)
    t.join()
    mark = len(ag.log())
    ag.start()
    # Then SIGHUP reloads (the inputs are built again from the stored
    # cursors) while entries keep coming.
    ag.wait_log("connected to", after=mark)
    t = threading.Thread(target=send_resume, args=(jd, n3, n4))
    t.start()
    reloads = 0
    while t.is_alive() and reloads < 5:
        mark = len(ag.log())
        ag.proc.send_signal(signal.SIGHUP)
        ag.wait_log("reload: configuration applied", after=mark)
        reloads += 1
        time.sleep(0.2)
    t.join()
    try:
        wait_numbered(env, "live", "resume", n4, timeout=120)
    except e2e.TestFailure:
        pass  # the count below says what is missing
    time.sleep(2)  # a duplicate would arrive by now

    lost, dup = exact(env, "live", "resume", range(n4))
    print("kill/resume: %d entries; first SIGKILL: %d delivered, cursor "
          "at '%s' (sender %s); second SIGKILL: %d delivered, cursor at "
          "'%s' (backlog up to n=%d); %d SIGHUP reloads while n=%d..%d "
          "were written; lost %d, duplicated %d"
          % (n4, at_kill, cur1, "still sending" if sending else "done",
             at_kill2, cur2, n2 - 1, reloads, n3, n4 - 1, len(lost),
             len(dup)))
    e2e.check(not lost, "%d entries lost after SIGKILL: %s"
              % (len(lost), lost[:20]))
    e2e.check(not dup, "%d entries duplicated after SIGKILL: %s"
              % (len(dup), dup[:20]))
    # The unit input saw none of them: its cursor is its own.
    e2e.check(not numbered(journal_events(env, "units"), "resume"),
              "the unit input read entries without a unit")


def test_agent_first_and_journald_restart(env):
    """The agent starts before its namespace has a journald (at boot, or
    before the first service with LogNamespace= runs), and journald is
    killed and restarted under the running agent. start_at: end, yet
    the first entries count: they were written after the agent started."""
    jd = Journald(env, env.mid)
    col, ag = start_agent(env, jd, INPUTS.replace("beginning", "end"))
    ag.wait_log(r"journal live: no journal files " +
                ("of namespace" if jd.ns else "yet"))
    jd.start()
    for n in range(100):
        jd.send(("MESSAGE", "early n=%d" % n), ("PRIORITY", 2))
    wait_numbered(env, "live", "early", 100, timeout=30)

    jd.kill()  # SIGKILL: the file is left dirty; the new one replaces it
    jd.start()
    for n in range(100, 200):
        jd.send(("MESSAGE", "early n=%d" % n), ("PRIORITY", 2))
    wait_numbered(env, "live", "early", 200, timeout=30)
    time.sleep(2)
    lost, dup = exact(env, "live", "early", range(200))
    e2e.check(not lost and not dup, "lost %s, duplicated %s" % (lost, dup))


def test_cursor_file_vacuumed(env):
    """The file that holds the stored cursor is deleted (journald's
    vacuum, SystemMaxUse) while the agent is down: reading resumes at
    the oldest entry left, and none of those is lost."""
    jd = Journald(env, env.mid).start()
    col, ag = start_agent(env, jd, INPUTS)
    ag.wait_log(reading(jd))
    for n in range(50):
        jd.send(("MESSAGE", "vac n=%d" % n), ("PRIORITY", 3))
    wait_numbered(env, "live", "vac", 50, timeout=30)
    ag.stop()
    jd.signal(signal.SIGUSR2)  # rotate: the cursor's file is archived
    e2e.wait_for(lambda: glob.glob(os.path.join(jd.paths[2], "system@*")),
                 20, "journald to rotate its file")
    for n in range(50, 100):
        jd.send(("MESSAGE", "vac n=%d" % n), ("PRIORITY", 3))
    e2e.wait_for(lambda: len([k for k in stored_vac(jd)]) >= 50, 20,
                 "journald to store 50 more")
    for f in glob.glob(os.path.join(jd.paths[2], "system@*")):
        os.unlink(f)  # what a vacuum does to the oldest archived files
    ag.start()
    try:
        wait_numbered(env, "live", "vac", 100, timeout=30)
    except e2e.TestFailure:
        pass  # the count below says what is missing
    time.sleep(2)
    lost, dup = exact(env, "live", "vac", range(100))
    e2e.check(not lost and not dup, "lost %s, duplicated %s" % (lost, dup))


def stored_vac(jd):
    return [e for e in journal_entries(jd)
            if str(e.get("MESSAGE", "")).startswith("vac n=")]


def test_bad_entries(env):
    """What a client may send journald: binary and invalid UTF-8,
    a NUL in MESSAGE, no MESSAGE at all, a MESSAGE over the wire's
    string limit. The agent ships what it can and never stops."""
    jd = Journald(env, env.mid).start()
    col, ag = start_agent(env, jd, INPUTS)
    ag.wait_log(reading(jd))
    jd.send(("MESSAGE", b"bin n=0 \xff\xfe\x00nul\nline two"),
            ("PRIORITY", 3))
    jd.send(("PRIORITY", 3), ("SYSLOG_IDENTIFIER", "no-message"))
    jd.send(("MESSAGE", "big n=0 " + "x" * 200000), ("PRIORITY", 3))
    jd.send(("MESSAGE", "after n=0"), ("PRIORITY", 3),
            ("SYSLOG_IDENTIFIER", "x" * 5000))
    wait_numbered(env, "live", "after", 1, timeout=30)
    evs = journal_events(env, "live")
    bins = [e for e in evs if e["message"].startswith("bin n=0")]
    e2e.check(len(bins) == 1, repr(bins))
    e2e.check(bins[0]["message"] == "bin n=0 \ufffd\ufffd\x00nul\nline two",
              repr(bins[0]["message"]))
    nomsg = [e for e in evs if e["rule"] == "no-message"]
    e2e.check(len(nomsg) == 1 and nomsg[0]["message"] == "", repr(nomsg))
    big = [e for e in evs if e["message"].startswith("big n=0")]
    e2e.check(len(big) == 1, "%d big events" % len(big))
    e2e.check(len(big[0]["message"]) == 64 << 10,
              "big MESSAGE kept %d bytes" % len(big[0]["message"]))
    after = numbered(evs, "after")[0][0]
    e2e.check(len(after["fields"]["identifier"]) == 256, repr(after)[:200])
    e2e.check(ag.alive() and col.alive(), "a daemon died")


if __name__ == "__main__":
    if JOURNALD is None:
        e2e.skip("systemd-journald is not installed (Debian: systemd); "
                 "the live journald test needs it")
    if os.geteuid() != 0:
        print("FAIL: the live journald test must run as root: journald "
              "binds its namespace sockets under /run/systemd and reads "
              "the trusted fields of its peers from /proc")
        sys.exit(1)
    # A meson timeout sends SIGTERM: unwind, so that the journald, the
    # daemons and the files are cleaned up.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    mid = MachineId()
    made_runlog = not os.path.exists("/run/log/journal")
    try:
        sweep_stale(mid.id)
        e2e.Env.mid = mid
        tests = [test_filters, test_kill_resume,
                 test_agent_first_and_journald_restart,
                 test_cursor_file_vacuumed, test_bad_entries]
        if len(sys.argv) > 1:  # run some: test_journald_live.py NAME...
            tests = [t for t in tests if t.__name__ in sys.argv[1:]]
        e2e.main(tests)
    finally:
        for jd in LIVE:
            jd.cleanup()
        mid.close()
        if made_runlog:
            try:
                os.rmdir("/run/log/journal")
            except OSError:
                pass
