#!/usr/bin/env python3
"""Mutual TLS refusals with the real daemons: each bad peer is refused
with a clear log line, and nothing it sent is stored (docs/security.md,
"The network")."""

import os
import socket
import ssl
import subprocess
import time

import tocsin_e2e as e2e


def setup(env, agents=("web-01",)):
    env.make_pki(agents=agents)
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    return col, log


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def no_events(env):
    e2e.check(env.events() == [], "events were stored from a refused agent")


def test_certificate_from_another_ca(env):
    col, log = setup(env)
    # A second, unrelated PKI with an agent of the same name.
    env.run([e2e.CTL, "pki", "init", os.path.join(env.dir, "rogue")])
    env.run([e2e.CTL, "pki", "issue-agent", os.path.join(env.dir, "rogue"), "web-01"])
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])])
    text = open(conf).read().replace("cert: pki/web-01.crt", "cert: rogue/web-01.crt") \
                            .replace("key: pki/web-01.key", "key: rogue/web-01.key")
    env.write("web-01.yaml", text)
    ag = env.agent(conf).start()
    append(log, "ERROR one\n")
    col.wait_log(r"handshake failed.*(unknown ca|certificate verify failed|unable to get)")
    ag.wait_log(r"(handshake failed|link down)")
    no_events(env)


def test_expired_certificate(env):
    col, log = setup(env)
    # openssl ca can backdate a certificate; tocsinctl never issues one.
    d = os.path.join(env.dir, "old")
    os.makedirs(os.path.join(d, "new"))
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    cnf = env.write("old/ca.cnf", (
        "[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\n"
        "new_certs_dir = %s/new\nserial = %s/serial\ndefault_md = sha256\n"
        "policy = p\nx509_extensions = x\n[p]\ncommonName = supplied\n"
        "[x]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n"
        "extendedKeyUsage = clientAuth\n") % (d, d, d))
    key, csr, crt = (os.path.join(env.pki, "old-01" + s) for s in (".key", ".csr", ".crt"))
    env.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key])
    env.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=old-01", "-out", csr])
    env.run(["openssl", "ca", "-batch", "-notext", "-config", cnf,
             "-cert", os.path.join(env.pki, "ca.crt"),
             "-keyfile", os.path.join(env.pki, "ca.key"),
             "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
             "-in", csr, "-out", crt])
    conf = env.agent_config("old-01", [(log, [("e", "ERROR", "error")])])
    env.agent(conf).start()
    append(log, "ERROR one\n")
    col.wait_log(r"handshake failed.*certificate has expired")
    no_events(env)


def test_wrong_server_name(env):
    col, log = setup(env)
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])],
                            server_name="wrong.example")
    ag = env.agent(conf).start()
    append(log, "ERROR one\n")
    ag.wait_log(r"handshake failed.*(hostname mismatch|certificate verify failed)")
    no_events(env)


def test_no_client_certificate(env):
    col, log = setup(env)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(env.pki, "ca.crt"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            # TLS 1.3: the server's refusal arrives after our handshake ends.
            try:
                s.sendall(b"\x00\x00\x00\x01\x90")
                s.recv(100)
            except (ssl.SSLError, ConnectionError, OSError):
                pass
    col.wait_log(r"handshake failed.*(did not return a certificate|no certificate)")
    e2e.check(col.alive(), "collector died")


def test_hello_claiming_another_name(env):
    col, log = setup(env)
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])],
                            extra="name: db-01\n")
    ag = env.agent(conf).start()
    append(log, "ERROR one\n")
    col.wait_log(r"refused: HELLO claims 'db-01' but certificate CN is 'web-01'")
    ag.wait_log(r"identity|claims")
    no_events(env)


def test_tls_1_2_refused(env):
    """A client offering at most TLS 1.2, even with a valid certificate,
    gets no session: the collector speaks TLS 1.3 only."""
    col, log = setup(env)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(env.pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(env.pki, "web-01.crt"),
                        os.path.join(env.pki, "web-01.key"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    refused = False
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"\x00\x00\x00\x01\x90")
                refused = s.recv(100) == b""
        except (ssl.SSLError, ConnectionError, OSError):
            refused = True
    e2e.check(refused, "a TLS 1.2 session was accepted")
    col.wait_log(r"handshake failed.*(protocol version|unsupported protocol)")
    no_events(env)


def test_slow_handshake_closed(env):
    """Slowloris: a peer that dribbles a ClientHello one byte at a time is
    closed once limits.handshake_timeout has passed, and a real agent
    still connects meanwhile."""
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    env.collector_config("limits: {handshake_timeout: 1s}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    # The first bytes of a TLS 1.3 ClientHello record header.
    hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) + b"\x00" * 200
    t0 = time.monotonic()
    closed_after = None
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        raw.settimeout(0.25)
        for b in hello:
            try:
                raw.sendall(bytes([b]))
                if raw.recv(100) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except (ConnectionError, OSError):
                closed_after = time.monotonic() - t0
                break
    e2e.check(closed_after is not None, "a slow handshake was never closed")
    e2e.check(closed_after < 30, "slow handshake held for %.1fs" % closed_after)
    col.wait_log(r"no HELLO within 1000 ms")
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])])
    env.agent(conf).start()
    append(log, "ERROR after the slow peer\n")
    e2e.wait_for(lambda: len(env.events()) == 1, 30, "the real agent's event")


if __name__ == "__main__":
    e2e.main([test_certificate_from_another_ca, test_expired_certificate,
              test_wrong_server_name, test_no_client_certificate,
              test_hello_claiming_another_name,
              test_tls_1_2_refused, test_slow_handshake_closed])
