#!/usr/bin/env python3
"""Health checks end to end: the real agent runs the real Nagios plugins
from Debian's monitoring-plugins-basic (check_tcp, check_disk,
check_procs) and the built-in http check (plain and https), and the
collector stores what it sends. Asserts the first state, each state
change exactly once, silence while the state holds, and the resend."""

import http.server
import os
import socket
import ssl
import threading
import time

import tocsin_e2e as e2e

PLUGINS = "/usr/lib/nagios/plugins"
RESEND_S = 10  # the OK -> CRITICAL -> OK steps take 8-9 s before it


class Listener:
    """A TCP port that can be opened and closed during the test."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.thread = None

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.sock = s
        self.thread = threading.Thread(target=self._serve, args=(s,), daemon=True)
        self.thread.start()

    def _serve(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            c.close()

    def stop(self):
        # shutdown wakes the accept() in the thread; close frees the port.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"status: healthy\n" if self.path == "/health" else b"nope\n"
        self.send_response(200 if self.path == "/health" else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def http_server(tls_dir=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    if tls_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls_dir, "collector.crt"),
                            os.path.join(tls_dir, "collector.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def of(evs, name):
    return [e for e in evs if e.get("source") == name]


def states(evs, name):
    return [e.get("state") for e in of(evs, name)]


def test_checks(env):
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")

    tcp_port = e2e.free_port()
    lst = Listener(tcp_port)
    lst.start()
    web = http_server()
    webs = http_server(tls_dir=env.pki)
    hport, sport = web.server_address[1], webs.server_address[1]

    log = env.write("logs/app.log", "")
    extra = (
        "labels: {env: test}\n"
        "check_defaults: {interval: 1s, timeout: 800ms, resend: %ds, "
        "max_concurrent: 2}\n"
        "checks:\n"
        "  - {name: port, type: exec, labels: {service: db},\n"
        "     command: [%s/check_tcp, -H, 127.0.0.1, -p, '%d', -t, '1']}\n"
        "  - {name: root-disk, type: exec, interval: 2s,\n"
        "     command: [%s/check_disk, -w, 1%%, -c, 1%%, -p, /]}\n"
        "  - {name: collector-procs, type: exec, interval: 2s,\n"
        "     command: [%s/check_procs, -c, '1:', -a, tocsin-collector]}\n"
        "  - {name: web, type: http, interval: 2s,\n"
        "     url: 'http://127.0.0.1:%d/health', expect_body: healthy}\n"
        "  - {name: web-404, type: http, interval: 2s,\n"
        "     url: 'http://127.0.0.1:%d/missing'}\n"
        "  - {name: web-tls, type: http, interval: 2s, ca: pki/ca.crt,\n"
        "     url: 'https://127.0.0.1:%d/health', expect_body: healthy}\n"
        "  - {name: web-tls-untrusted, type: http, interval: 2s,\n"
        "     url: 'https://127.0.0.1:%d/health'}\n"
        "  - {name: port-builtin, type: tcp, interval: 2s,\n"
        "     address: '127.0.0.1:%d'}\n"
        % (RESEND_S, PLUGINS, tcp_port, PLUGINS, PLUGINS, hport, hport,
           sport, sport, tcp_port))
    conf = env.agent_config("web-01", [(log, [("err", "ERROR", "error")])],
                            extra=extra)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")

    def wait_states(name, want, timeout=20):
        return e2e.wait_for(lambda: states(env.events(), name) == want, timeout,
                            "%s states %r (have %r)" % (name, want,
                                                        states(env.events(), name)),
                            interval=0.2)

    # The first result of every check is sent.
    wait_states("port", [0])
    first = of(env.events(), "port")[0]
    e2e.check(first["kind"] == "check" and first["rule"] == "port", repr(first))
    e2e.check(first["severity"] == "ok", repr(first))
    e2e.check(first["message"].startswith("TCP OK"), repr(first))
    e2e.check(first["labels"] == {"env": "test", "service": "db"}, repr(first))
    e2e.check("perf.time" in first.get("fields", {}), repr(first))
    t_first = time.monotonic()

    # While the state holds (and resend has not come), nothing more.
    time.sleep(3.5)
    e2e.check(states(env.events(), "port") == [0],
              "events while the state held: %r" % states(env.events(), "port"))

    # OK -> CRITICAL: sent once, however many runs see it.
    lst.stop()
    wait_states("port", [0, 2])
    crit = of(env.events(), "port")[1]
    e2e.check(crit["severity"] == "critical", repr(crit))
    e2e.check("refused" in crit["message"].lower(), repr(crit))
    time.sleep(2.5)
    e2e.check(states(env.events(), "port") == [0, 2],
              "CRITICAL sent more than once: %r" % states(env.events(), "port"))

    # CRITICAL -> OK: sent once.
    lst.start()
    wait_states("port", [0, 2, 0])
    t_ok = time.monotonic()
    e2e.check(t_ok - t_first < RESEND_S + 3, "test too slow to tell resend apart")

    # The unchanged state is re-sent after `resend`, not before.
    time.sleep(RESEND_S - 2.5)
    e2e.check(states(env.events(), "port") == [0, 2, 0],
              "resent too early: %r" % states(env.events(), "port"))
    wait_states("port", [0, 2, 0, 0], timeout=RESEND_S + 5)
    evs = of(env.events(), "port")
    gap = (evs[3]["ts"] - evs[2]["ts"]) / 1e9
    e2e.check(RESEND_S - 0.1 <= gap <= RESEND_S + 2.5,
              "resend after %.1fs, want about %ds" % (gap, RESEND_S))

    evs = env.events()
    disk = of(evs, "root-disk")
    e2e.check(disk and disk[0]["message"].startswith("DISK"), repr(disk))
    e2e.check(disk[0]["state"] in (0, 1, 2), repr(disk))
    e2e.check(any(k.startswith("perf./") for k in disk[0].get("fields", {})),
              repr(disk))
    # check_procs never counts its own parent (the agent), so the
    # collector is the process to look for; by argument, because its
    # comm is cut to 15 bytes ("tocsin-collecto").
    procs = of(evs, "collector-procs")
    e2e.check(procs and procs[0]["state"] == 0, repr(procs))
    e2e.check("PROCS OK" in procs[0]["message"], repr(procs))
    e2e.check("perf.procs" in procs[0].get("fields", {}), repr(procs))

    w = of(evs, "web")
    e2e.check(w and w[0]["state"] == 0 and w[0]["message"].startswith("HTTP 200 in"),
              repr(w))
    e2e.check(w[0]["fields"].get("http_status") == "200", repr(w))
    w = of(evs, "web-404")
    e2e.check(w and w[0]["state"] == 2 and "HTTP 503 (expected 200)" in w[0]["message"],
              repr(w))
    w = of(evs, "web-tls")
    e2e.check(w and w[0]["state"] == 0 and w[0]["message"].startswith("HTTP 200 in"),
              repr(w))
    # Without ca: the system store, which does not know our test CA.
    w = of(evs, "web-tls-untrusted")
    e2e.check(w and w[0]["state"] == 2 and "certificate" in w[0]["message"],
              repr(w))
    w = of(evs, "port-builtin")
    e2e.check(w and w[0]["state"] == 0 and w[0]["message"].startswith("connected to"),
              repr(w))

    # SIGTERM with checks configured: a clean, prompt exit.
    e2e.check(ag.stop(timeout=10) == 0, "agent exit status")
    ag.wait_log("exiting")
    web.shutdown()
    webs.shutdown()
    lst.stop()


if __name__ == "__main__":
    e2e.main([test_checks])
