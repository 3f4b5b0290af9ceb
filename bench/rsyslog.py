#!/usr/bin/env python3
"""tocsin-agent side by side with rsyslog on the same file, in one run.

Modes (issue 3, item 9):
  ship-all  every line of the file becomes an event (tocsin: a rule that
            matches every line; rsyslog: imfile -> omfwd over TLS to a
            second rsyslog that writes omfile). Reports lines/s delivered
            end to end for both.
  match     3% of the lines match (tocsin: one rule; rsyslog: a message
            filter before omfwd). Reports lines/s scanned (tocsin: until
            its spool holds the file's end offset) and end to end.
  idle      100 tailed files and 20 health checks for 60 s: RSS and CPU%
            of the agent, and of rsyslog tailing the same 100 files. Then
            one matching line is appended to one file and both are
            measured again once it is delivered: rsyslog loads its TLS
            driver (GnuTLS) only for the first message it forwards, while
            the agent holds its TLS link to the collector from the start.
            Last, a burst of BURST_LINES lines (3% matching) goes into a
            second file, and both are measured after QUIET_S seconds of
            quiet once it is delivered: the memory a daemon keeps after
            activity is what an idle host pays most of the time.

Usage: bench/rsyslog.py [--lines N] [--mode ship-all|match|idle|all]
                        [--idle-seconds S] [--skip-rsyslog]
Builds a release tree in build-bench (override with BUILD=...). AGENT=
runs another tocsin-agent binary (e.g. an older commit's) against the
same collector, for A/B comparisons.
Needs rsyslog and rsyslog-gnutls (packaging/install-deps.sh).
"""

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, os.environ.get("BUILD", "build-bench"))
CTL = os.path.join(BUILD, "collector", "tocsinctl")
COL = os.path.join(BUILD, "collector", "tocsin-collector")
AGENT = os.environ.get("AGENT") or os.path.join(BUILD, "agent", "tocsin-agent")
HZ = os.sysconf("SC_CLK_TCK")


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / HZ


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss(pid):
    """Proportional set size in KiB: shared library pages divided among
    the processes that map them."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def mem(pid):
    return "RSS %.1f MiB (anon %.1f MiB, PSS %.1f MiB)" % (
        status(pid, "VmRSS") / 1024, status(pid, "RssAnon") / 1024, pss(pid) / 1024)


SAMPLE_S = 5


def sample_rss(pid, seconds):
    """Sleep for seconds, noting VmRSS every SAMPLE_S: the agent gives back
    start-up's memory and code pages once its first check results are in,
    so one figure at the end would hide the start-up transient."""
    out = []
    t_end = time.monotonic() + seconds
    while True:
        left = t_end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(SAMPLE_S, left))
        out.append("%.1f" % (status(pid, "VmRSS") / 1024))
    return " ".join(out)


def wait(pred, timeout=600, step=0.02):
    t_end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t_end:
            raise SystemExit("timed out")
        time.sleep(step)


def gen(path, n, pct):
    with open(path, "w") as f:
        for i in range(n):
            if pct and (i * 37) % 100 < pct:
                f.write("2026-11-26T10:00:00.%06dZ app[311]: ERROR upstream timeout id=%d\n" % (i % 1000000, i))
            else:
                f.write("2026-11-26T10:00:00.%06dZ app[311]: INFO GET /api/v1/items/%d 200 12ms\n" % (i % 1000000, i))


class Work:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tocsin-bench-rsyslog.")
        self.procs = []
        subprocess.run([CTL, "pki", "init", self.p("pki")], check=True, capture_output=True)
        subprocess.run([CTL, "pki", "issue-agent", self.p("pki"), "web-01"], check=True,
                       capture_output=True)

    def p(self, *a):
        return os.path.join(self.dir, *a)

    def write(self, name, text):
        with open(self.p(name), "w") as f:
            f.write(text)
        return self.p(name)

    def start(self, argv, log):
        pr = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                              stderr=open(self.p(log), "w"), cwd=self.dir)
        self.procs.append(pr)
        return pr

    def stop(self, pr):
        pr.terminate()
        try:
            pr.wait(10)
        except subprocess.TimeoutExpired:
            pr.kill()
            pr.wait()

    def close(self):
        for pr in self.procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def tocsin_run(w, files, rules, expect, checks=""):
    """Start a collector and an agent; return (agent proc, col conf, t0)."""
    cp = port()
    w.write("collector.yaml", "listen: 127.0.0.1:%d\ntls: {ca: pki/ca.crt, cert: pki/collector.crt, "
            "key: pki/collector.key}\nstore: {path: state/collector.db}\n" % cp)
    col = w.start([COL, "-d", "-c", w.p("collector.yaml")], "collector.log")
    wait(lambda: "listening on" in open(w.p("collector.log")).read())
    text = ("collector: {address: 127.0.0.1:%d}\ntls: {ca: pki/ca.crt, cert: pki/web-01.crt, "
            "key: pki/web-01.key}\nstate_dir: state/web-01\nfiles:\n" % cp)
    for f in files:
        text += "  - path: %s\n    rules:\n" % f
        for r in rules:
            text += "      - %s\n" % r
    text += checks
    w.write("agent.yaml", text)
    t0 = time.monotonic()
    ag = w.start([AGENT, "-d", "-c", w.p("agent.yaml")], "agent.log")
    return ag, col, t0


def store_hwm(w):
    """The collector's hwm for its agents, read from its store directly:
    the same rows as `tocsinctl agents list`, without starting a process
    every poll (on two cores, the pollers' CPU is taken from the daemons
    under test)."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % w.p("state/collector.db"), uri=True, timeout=1)
        v = db.execute("select max(hwm) from agents").fetchone()[0]
        db.close()
        return v or 0
    except sqlite3.Error:
        return 0


def spool_offset(w, size):
    try:
        db = sqlite3.connect("file:%s?mode=ro" % w.p("state/web-01/spool.db"), uri=True, timeout=1)
        v = db.execute("select max(offset) from files where path like 'file:%'").fetchone()[0]
        db.close()
        return v == size
    except sqlite3.Error:
        return False


def settle(w):
    """Before each run: drop what an earlier run stored and wait until
    what was written reached the disk (the generated file, tocsin's
    stores: several hundred MB), so that neither run pays for the
    writeback of what came before it."""
    shutil.rmtree(w.p("state"), ignore_errors=True)
    subprocess.run(["sync"], check=False)
    time.sleep(1)


def rsyslog_run(w, files, filt, out_name="out.log"):
    rp = port()
    for d in ("wa", "wb"):
        os.makedirs(w.p(d), exist_ok=True)
    w.write("b.conf", (
        'global(workDirectory="%s" DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="%s" '
        'DefaultNetstreamDriverCertFile="%s" DefaultNetstreamDriverKeyFile="%s")\n'
        'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.Authmode="anon")\n'
        'input(type="imtcp" port="%d")\n'
        'template(name="raw" type="string" string="%%msg%%\\n")\n'
        '*.* action(type="omfile" file="%s" template="raw")\n')
        % (w.p("wb"), w.p("pki/ca.crt"), w.p("pki/collector.crt"), w.p("pki/collector.key"), rp,
           w.p(out_name)))
    text = ('global(workDirectory="%s" DefaultNetstreamDriverCAFile="%s")\n'
            'module(load="imfile" PollingInterval="1")\n' % (w.p("wa"), w.p("pki/ca.crt")))
    for i, f in enumerate(files):
        text += 'input(type="imfile" File="%s" Tag="f%d:" freshStartTail="off")\n' % (f, i)
    act = ('action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" StreamDriver="gtls" '
           'StreamDriverMode="1" StreamDriverAuthMode="anon")' % rp)
    text += ('if $msg contains "%s" then %s\n' % (filt, act)) if filt else act + "\n"
    w.write("a.conf", text)
    b = w.start(["rsyslogd", "-n", "-f", w.p("b.conf"), "-i", w.p("b.pid")], "b.log")
    time.sleep(0.5)
    t0 = time.monotonic()
    a = w.start(["rsyslogd", "-n", "-f", w.p("a.conf"), "-i", w.p("a.pid")], "a.log")
    return a, b, t0


class LineCounter:
    """Lines in a growing file, reading only what was appended since the
    previous call. Counting the whole file again at every poll took more
    CPU than the receiving rsyslog by the end of a run, on the two cores
    the senders need."""

    def __init__(self, path):
        self.path, self.off, self.n = path, 0, 0

    def __call__(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                for buf in iter(lambda: f.read(1 << 20), b""):
                    self.n += buf.count(b"\n")
                    self.off += len(buf)
        except FileNotFoundError:
            pass
        return self.n


def mode_lines(n, pct, label, rsyslog=True):
    print("== %s: %d lines, %s" % (label, n, "%d%% matching" % pct if pct else "every line shipped"))
    w = Work()
    try:
        log = w.p("app.log")
        gen(log, n, pct)
        size = os.path.getsize(log)
        settle(w)
        expect = n if not pct else sum(1 for i in range(n) if (i * 37) % 100 < pct)
        rule = "{name: all, match: '^', severity: info}" if not pct else \
               "{name: err, match: 'ERROR (?<detail>.*)', severity: error}"
        ag, col, t0 = tocsin_run(w, [log], [rule], expect)
        wait(lambda: spool_offset(w, size), step=0.01)
        t_scan = time.monotonic() - t0
        wait(lambda: store_hwm(w) >= expect, step=0.02)
        t_e2e = time.monotonic() - t0
        a_cpu, a_rss = cpu_s(ag.pid), status(ag.pid, "VmHWM")
        c_cpu, c_rss = cpu_s(col.pid), status(col.pid, "VmHWM")
        w.stop(ag)
        w.stop(col)
        print("tocsin : scan %.2fs = %.0f lines/s; end to end %.2fs = %.0f lines/s; "
              "agent cpu %.2fs, peak RSS %.1f MiB; collector cpu %.2fs, peak RSS %.1f MiB"
              % (t_scan, n / t_scan, t_e2e, n / t_e2e, a_cpu, a_rss / 1024,
                 c_cpu, c_rss / 1024))
        if not rsyslog:
            return
        settle(w)
        a, b, t0 = rsyslog_run(w, [log], "ERROR" if pct else None)
        lines = LineCounter(w.p("out.log"))
        wait(lambda: lines() >= expect, step=0.02)
        t_r = time.monotonic() - t0
        r_cpu, r_rss = cpu_s(a.pid), status(a.pid, "VmHWM")
        rb_cpu, rb_rss = cpu_s(b.pid), status(b.pid, "VmHWM")
        print("rsyslog: end to end %.2fs = %.0f lines/s; sender cpu %.2fs, peak RSS %.1f MiB; "
              "receiver cpu %.2fs, peak RSS %.1f MiB"
              % (t_r, n / t_r, r_cpu, r_rss / 1024, rb_cpu, rb_rss / 1024))
        print("ratio (tocsin end to end / rsyslog): %.2f" % ((n / t_e2e) / (n / t_r)))
    finally:
        w.close()


BURST_LINES = 60000
QUIET_S = 30


def burst(w, path):
    """Append BURST_LINES lines (3% matching) to path; the matches."""
    gen(w.p("burst.tmp"), BURST_LINES, 3)
    with open(path, "a") as o, open(w.p("burst.tmp")) as i:
        o.write(i.read())
    return sum(1 for i in range(BURST_LINES) if (i * 37) % 100 < 3)


def mode_idle(seconds, rsyslog=True):
    print("== idle: 100 tailed files, 20 checks, %ds" % seconds)
    w = Work()
    try:
        os.makedirs(w.p("logs"))
        files = []
        for i in range(100):
            f = w.p("logs", "app%03d.log" % i)
            open(f, "w").close()
            files.append(f)
        checks = "check_defaults: {interval: 30s, timeout: 5s}\nchecks:\n"
        for i in range(20):
            kind = ("disk", "process", "file_age", "tcp")[i % 4]
            checks += "  - {name: c%02d, type: %s" % (i, kind)
            checks += {"disk": ", path: /}\n", "process": ", process: tocsin-agent}\n",
                       "file_age": ", path: %s, warning_age: 1h, critical_age: 2h}\n" % files[0],
                       "tcp": ", address: 127.0.0.1:22}\n"}[kind]
        line = "2026-11-26T10:00:00.000000Z app[311]: ERROR upstream timeout id=1\n"
        ag, col, _ = tocsin_run(w, files, ["{name: err, match: 'ERROR', severity: error}"], 0,
                                checks=checks)
        time.sleep(3)  # start-up done, first check runs spread by splay
        c0 = cpu_s(ag.pid)
        series = sample_rss(ag.pid, seconds)
        c1 = cpu_s(ag.pid)
        print("tocsin : RSS MiB every %d s, from 3 s after start: %s" % (SAMPLE_S, series))
        print("tocsin : agent CPU %.3f%% of a core, %s, peak %.1f MiB"
              % (100 * (c1 - c0) / seconds, mem(ag.pid), status(ag.pid, "VmHWM") / 1024))
        with open(files[0], "a") as f:
            f.write(line)
        wait(lambda: spool_offset(w, os.path.getsize(files[0])), timeout=30)
        time.sleep(5)
        print("tocsin : after one line: %s" % mem(ag.pid))
        hwm = store_hwm(w)
        n = burst(w, files[1])
        wait(lambda: store_hwm(w) >= hwm + n, timeout=120, step=0.2)
        time.sleep(QUIET_S)
        print("tocsin : %d lines later, %d s quiet: %s, peak %.1f MiB"
              % (BURST_LINES, QUIET_S, mem(ag.pid), status(ag.pid, "VmHWM") / 1024))
        w.stop(ag)
        w.stop(col)
        if not rsyslog:
            return
        for f in files[:2]:
            open(f, "w").close()
        a, b, _ = rsyslog_run(w, files, "ERROR")
        time.sleep(3)
        c0 = cpu_s(a.pid)
        time.sleep(seconds)
        c1 = cpu_s(a.pid)
        print("rsyslog: sender CPU %.3f%% of a core, %s"
              % (100 * (c1 - c0) / seconds, mem(a.pid)))
        with open(files[0], "a") as f:
            f.write(line)
        lines = LineCounter(w.p("out.log"))
        wait(lambda: lines() >= 1, timeout=30)
        time.sleep(5)
        print("rsyslog: after one forwarded line (TLS driver loaded): %s" % mem(a.pid))
        n = burst(w, files[1])
        wait(lambda: lines() >= 1 + n, timeout=120, step=0.2)
        time.sleep(QUIET_S)
        print("rsyslog: %d lines later, %d s quiet: %s, peak %.1f MiB"
              % (BURST_LINES, QUIET_S, mem(a.pid), status(a.pid, "VmHWM") / 1024))
    finally:
        w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--mode", default="all")
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--skip-rsyslog", action="store_true")
    o = ap.parse_args()
    if not os.path.exists(AGENT):
        if not os.path.isdir(BUILD):
            subprocess.run(["meson", "setup", BUILD, "--buildtype=release"], check=True,
                           stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", BUILD], check=True, stdout=subprocess.DEVNULL)
    print("machine: %s, %d cpus" % (open("/proc/cpuinfo").read().split("model name")[1]
                                     .split(":")[1].split("\n")[0].strip(), os.cpu_count()))
    if o.mode in ("ship-all", "all"):
        mode_lines(o.lines, 0, "ship-all", not o.skip_rsyslog)
    if o.mode in ("match", "all"):
        mode_lines(o.lines, 3, "3% match", not o.skip_rsyslog)
    if o.mode in ("idle", "all"):
        mode_idle(o.idle_seconds, not o.skip_rsyslog)


if __name__ == "__main__":
    main()
