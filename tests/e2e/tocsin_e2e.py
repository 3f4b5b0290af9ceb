"""Shared harness for tocsin's end-to-end tests.

Every test runs the real binaries from the build tree (TOCSIN_BUILD) on
127.0.0.1 with real TLS (certificates made by `tocsinctl pki`), a real
SQLite file and real processes, in a fresh temporary directory. The
directory and every daemon's log are kept when a test fails, and the tail
of each log is printed, so a failure in CI can be read from its output.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("TOCSIN_BUILD", os.path.join(os.getcwd(), "build"))
AGENT = os.path.join(BUILD, "agent", "tocsin-agent")
COLLECTOR = os.path.join(BUILD, "collector", "tocsin-collector")
CTL = os.path.join(BUILD, "collector", "tocsinctl")


class TestFailure(Exception):
    pass


# meson counts a test that exits with 77 as skipped (not passed).
SKIP_EXIT = 77


def skip(reason):
    """Skip the whole test file: print why, exit 77. Only for a missing
    prerequisite that CI installs; anything else must fail."""
    print("SKIP: %s" % reason)
    sys.stdout.flush()
    sys.exit(SKIP_EXIT)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def free_port():
    """A port that was free a moment ago (good enough on loopback)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Daemon:
    """One running tocsin daemon with its stderr log in the test dir."""

    def __init__(self, env, name, argv):
        self.env = env
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(env.dir, "%s.log" % name)
        self.proc = None
        self.starts = 0

    def start(self):
        log = open(self.log_path, "ab")
        log.write(("=== start %d: %s\n" % (self.starts, " ".join(self.argv))).encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("%s did not exit within %ds of SIGTERM" % (self.name, timeout))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=20, after=0):
        rx = re.compile(pattern)

        def found():
            text = self.log()[after:]
            if self.proc is not None and self.proc.poll() is not None and not rx.search(text):
                raise TestFailure("%s exited (status %s) before logging /%s/"
                                  % (self.name, self.proc.returncode, pattern))
            return rx.search(text)

        return wait_for(found, timeout, "%s to log /%s/" % (self.name, pattern))


class Env:
    """A temp dir with a PKI, configs, and the daemons started from it."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="tocsin-e2e-%s-" % name)
        self.pki = os.path.join(self.dir, "pki")
        self.daemons = []
        self.cleanups = []  # callables run last by cleanup(), pass or fail
        self.port = free_port()

    # --- commands -------------------------------------------------------
    def run(self, argv, expect=0, timeout=120):
        p = subprocess.run(argv, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        bad = [l for l in err.splitlines() if any(m in l for m in SANITIZER_MARKS)]
        if bad:
            raise TestFailure("sanitizer report from %s:\n%s" % (" ".join(argv), "\n".join(bad[:5])))
        if expect is not None and p.returncode != expect:
            raise TestFailure("%s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                              % (" ".join(argv), p.returncode, expect, out, err))
        return p.returncode, out, err

    def ctl(self, *args, expect=0):
        return self.run([CTL, "-c", self.collector_conf] + list(args), expect=expect)[1]

    def make_pki(self, agents=("web-01",), sans=()):
        argv = [CTL, "pki", "init", self.pki]
        for s in sans:
            argv += ["--san", s]
        self.run(argv)
        for a in agents:
            self.run([CTL, "pki", "issue-agent", self.pki, a])

    # --- configs --------------------------------------------------------
    def write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def collector_config(self, extra=""):
        self.collector_conf = self.write("collector.yaml", (
            "listen: 127.0.0.1:%d\n"
            "tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}\n"
            "store: {path: state/collector.db}\n" % self.port) + extra)
        return self.collector_conf

    def agent_config(self, name, files, extra="", cert=None, server_name=None):
        """files: list of (path, [(rule, regex, severity), ...])."""
        cert = cert or name
        col = "collector: {address: 127.0.0.1:%d" % self.port
        if server_name:
            col += ", server_name: %s" % server_name
        col += "}\n"
        text = (col +
                "tls: {ca: pki/ca.crt, cert: pki/%s.crt, key: pki/%s.key}\n"
                "state_dir: state/%s\n" % (cert, cert, name))
        text += extra
        text += "files:\n"
        for path, rules in files:
            text += "  - path: %s\n    rules:\n" % path
            for rname, rx, sev in rules:
                text += "      - {name: %s, match: '%s', severity: %s}\n" % (rname, rx, sev)
        return self.write("%s.yaml" % name, text)

    # --- daemons --------------------------------------------------------
    def collector(self, name="collector", conf=None):
        d = Daemon(self, name, [COLLECTOR, "-d", "-c", conf or self.collector_conf])
        self.daemons.append(d)
        return d

    def agent(self, conf, name=None):
        name = name or os.path.basename(conf).rsplit(".", 1)[0]
        d = Daemon(self, "agent-" + name, [AGENT, "-d", "-c", conf])
        self.daemons.append(d)
        return d

    def events(self, host=None):
        args = ["events", "list", "--json", "--limit", "0"]
        if host:
            args += ["--host", host]
        return json.loads(self.ctl(*args))

    def cleanup(self, ok):
        for d in self.daemons:
            try:
                d.kill()
            except Exception:
                pass
        for fn in self.cleanups:
            try:
                fn()
            except Exception:
                traceback.print_exc(file=sys.stdout)
        if ok and not os.environ.get("TOCSIN_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        print("test dir kept: %s" % self.dir)
        for d in self.daemons:
            text = d.log()
            print("----- last 40 lines of %s -----" % d.log_path)
            print("\n".join(text.splitlines()[-40:]))


# --- speaking the wire protocol by hand (hostile peers) ---------------------

def mp(v):
    """A tiny msgpack encoder (uint64, str, bool, list, map), enough to
    write frames by hand; docs/protocol.md has the frames."""
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        return b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def frame(body):
    """One frame: a 4-byte big-endian length, then the body."""
    return struct.pack(">I", len(body)) + body


def peer_context(env, name):
    """A TLS client context holding agent NAME's certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(env.pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(env.pki, "%s.crt" % name),
                        os.path.join(env.pki, "%s.key" % name))
    return ctx


def peer_session(env, name, payload, timeout=10, port_out=None):
    """Connect as agent NAME, send PAYLOAD, read until the collector
    closes; returns what it sent back. With port_out (a list), our source
    port is appended to it: the collector names sessions by it."""
    with socket.create_connection(("127.0.0.1", env.port), timeout=timeout) as raw:
        if port_out is not None:
            port_out.append(raw.getsockname()[1])
        with peer_context(env, name).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(payload)
            return recv_all(s)


def recv_all(s, timeout=None):
    """Everything the peer sends on socket S until it closes (or errs)."""
    if timeout is not None:
        s.settimeout(timeout)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
        pass
    return got


SANITIZER_MARKS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "WARNING: ThreadSanitizer")


def sanitizer_reports(env):
    """Lines where a daemon's sanitizer complained: a failure even when the
    test's own assertions held (UBSan may be set not to halt)."""
    found = []
    for d in env.daemons:
        for line in d.log().splitlines():
            if any(m in line for m in SANITIZER_MARKS):
                found.append("%s: %s" % (d.name, line.strip()))
    return found


def main(tests):
    """Run test functions (each takes a fresh Env); print a summary."""
    failed = 0
    for fn in tests:
        env = Env(fn.__name__)
        t0 = time.monotonic()
        ok = False
        try:
            fn(env)
            for d in env.daemons:  # let LeakSanitizer report at exit
                if d.alive():
                    d.stop()
            reports = sanitizer_reports(env)
            check(not reports, "sanitizer reports:\n" + "\n".join(reports[:10]))
            ok = True
            print("ok   %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
        finally:
            env.cleanup(ok)
        sys.stdout.flush()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
