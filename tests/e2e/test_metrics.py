#!/usr/bin/env python3
"""Prometheus metrics with the real collector and agent (docs/metrics.md):
the textfile beside the store parses as the text format 0.0.4 (checked
here line by line; with promtool too when it is installed), tocsinctl
metrics prints it; events an agent sends raise received and stored by
exactly their number, the agent shows as connected, its incident in the
incidents gauge, and no label carries the agent's name (series come from
fixed sets only, docs/security.md); bad TLS clients are counted by
class (bad_cert from a real agent with another CA's certificate,
expired from one with a backdated certificate, no_cert, protocol); and tocsinctl metrics refuses a file that is not
ours."""

import os
import re
import shutil
import socket
import ssl
import stat
import subprocess

import tocsin_e2e as e2e

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*\})? (\S+)$" % (NAME, LABEL, LABEL))


def parse(text):
    """The exposition format as a scraper reads it: {series: value}.
    Fails on anything malformed: a sample before its # HELP and # TYPE,
    a counter without _total, histogram buckets that are not cumulative
    or whose +Inf differs from _count."""
    e2e.check(text.endswith("\n"), "no final newline")
    types, series, fam = {}, {}, None
    last_bucket, inf = None, None
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            fam = line.split(" ")[2]
            e2e.check(re.fullmatch(NAME, fam) and fam not in types,
                      "bad or repeated family: %r" % line)
            types[fam] = None
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            e2e.check(name == fam and types[fam] is None, "TYPE out of place: %r" % line)
            e2e.check(typ in ("counter", "gauge", "histogram"), "type %r" % typ)
            e2e.check(typ != "counter" or name.endswith("_total"), "counter %s" % name)
            e2e.check(typ != "histogram" or name.endswith("_seconds"), "histogram %s" % name)
            types[fam] = typ
            last_bucket, inf = None, None
            continue
        m = SAMPLE.match(line)
        e2e.check(m is not None, "not a sample line: %r" % line)
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        e2e.check(fam is not None and types.get(fam), "sample before its TYPE: %r" % line)
        if types[fam] == "histogram":
            e2e.check(name in (fam + "_bucket", fam + "_sum", fam + "_count"), line)
            if name.endswith("_bucket"):
                e2e.check(last_bucket is None or value >= last_bucket,
                          "buckets not cumulative: %r" % line)
                last_bucket = value
                if 'le="+Inf"' in labels:
                    inf = value
            if name.endswith("_count"):
                e2e.check(inf == value, "+Inf bucket %r != _count %r" % (inf, value))
        else:
            e2e.check(name == fam, "sample %s in family %s" % (name, fam))
        key = name + labels
        e2e.check(key not in series, "repeated series %s" % key)
        series[key] = value
    return series


def metrics(env):
    text = env.ctl("metrics")
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True)
        e2e.check(p.returncode == 0, "promtool: %s" % p.stderr.decode())
    return text, parse(text)


def value(env, key):
    return metrics(env)[1].get(key)


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def stable(env):
    """Nothing in flight: every event received is stored or dropped as
    a duplicate. Returns the figures."""
    def done():
        s = metrics(env)[1]
        ok = (s["tocsin_pipeline_queue_events"] == 0 and
              s["tocsin_events_received_total"] ==
              s['tocsin_events_stored_total{origin="agent"}'] +
              s["tocsin_events_deduplicated_total"])
        return s if ok else None
    return e2e.wait_for(done, 20, "the pipeline to settle")


def test_events_agents_incidents(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    prom = os.path.join(env.dir, "state", "collector.db-metrics.prom")
    e2e.wait_for(lambda: os.path.exists(prom), 10, "the metrics textfile")
    st = os.stat(prom)
    e2e.check(stat.S_IMODE(st.st_mode) == 0o600, "mode %o" % stat.S_IMODE(st.st_mode))
    text, s = metrics(env)
    e2e.check(text.startswith("# HELP tocsin_collector_start_time_seconds "),
              "tocsinctl metrics: %r" % text[:80])
    e2e.check(s["tocsin_agents_connected"] == 0, "agents before any: %r" % s)

    conf = env.agent_config("web-01", [(log, [("oom", "OOM", "error")])])
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    e2e.wait_for(lambda: value(env, "tocsin_agents_connected") == 1, 10,
                 "tocsin_agents_connected 1")
    before = stable(env)
    n = 37
    append(log, "".join("OOM killed %d\n" % i for i in range(n)))
    e2e.wait_for(lambda: value(env, 'tocsin_events_stored_total{origin="agent"}')
                 == before['tocsin_events_stored_total{origin="agent"}'] + n,
                 30, "stored_total to rise by %d" % n)
    after = stable(env)
    got = after["tocsin_events_received_total"] - before["tocsin_events_received_total"]
    e2e.check(got == n, "received rose by %d, sent %d" % (got, n))
    e2e.check(after["tocsin_store_commits_total"] > before["tocsin_store_commits_total"],
              "no commit counted")
    e2e.check(after["tocsin_store_commit_duration_seconds_count"] ==
              after["tocsin_store_commits_total"], "commit histogram count")

    # The incident, in the census (taken about once a second).
    def one_open():
        s = metrics(env)[1]
        return sum(v for k, v in s.items()
                   if k.startswith('tocsin_incidents{state="open"')) == 1
    e2e.wait_for(one_open, 20, "one open incident in tocsin_incidents")
    text, s = metrics(env)
    e2e.check(s["tocsin_engine_step_duration_seconds_count"] > 0, "no engine step")
    e2e.check(s["tocsin_event_loop_lag_seconds_count"] > 0, "no loop lag samples")
    # Bounded: no label value names an agent or a rule.
    e2e.check("web-01" not in text and "oom" not in text, "a peer's name in a label")

    ag.stop()
    e2e.wait_for(lambda: value(env, "tocsin_agents_connected") == 0, 10,
                 "tocsin_agents_connected back to 0")


def test_handshake_failures(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    key = 'tocsin_tls_handshake_failures_total{reason="%s"}'
    s = metrics(env)[1]
    for r in ("no_cert", "bad_cert", "expired", "protocol", "timeout", "eof", "other"):
        e2e.check(s[key % r] == 0, "%s before any: %r" % (r, s[key % r]))

    # A real agent holding a certificate of another CA.
    env.run([e2e.CTL, "pki", "init", os.path.join(env.dir, "rogue")])
    env.run([e2e.CTL, "pki", "issue-agent", os.path.join(env.dir, "rogue"), "web-01"])
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])])
    text = open(conf).read().replace("pki/web-01.", "rogue/web-01.")
    env.write("web-01.yaml", text)
    ag = env.agent(conf).start()
    col.wait_log(r"handshake failed")
    e2e.wait_for(lambda: value(env, key % "bad_cert") >= 1, 10, "bad_cert counted")
    ag.stop()

    # No client certificate at all.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(env.pki, "ca.crt"))
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"x")
                e2e.recv_all(s, timeout=5)
        except (ssl.SSLError, OSError):
            pass
    e2e.wait_for(lambda: value(env, key % "no_cert") == 1, 10, "no_cert counted")

    # Not TLS at all.
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as raw:
        raw.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        e2e.recv_all(raw, timeout=5)
    e2e.wait_for(lambda: value(env, key % "protocol") == 1, 10, "protocol counted")
    s = metrics(env)[1]
    e2e.check(s['tocsin_events_stored_total{origin="agent"}'] == 0, "stored from a refused peer")
    e2e.check(s[key % "expired"] == 0 and s[key % "other"] == 0,
              "another class counted: %r" % {k: v for k, v in s.items() if "tls" in k})


def test_expired_counted(env):
    """A real agent with an expired certificate of the right CA: expired,
    not bad_cert (openssl ca backdates one; tocsinctl never issues it)."""
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
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
    col.wait_log(r"handshake failed.*certificate has expired")
    key = 'tocsin_tls_handshake_failures_total{reason="%s"}'
    e2e.wait_for(lambda: value(env, key % "expired") >= 1, 10, "expired counted")
    e2e.check(value(env, key % "bad_cert") == 0, "expired counted as bad_cert")


def test_ctl_refuses(env):
    env.make_pki()
    env.collector_config()
    os.makedirs(os.path.join(env.dir, "state"), exist_ok=True)
    prom = os.path.join(env.dir, "state", "collector.db-metrics.prom")
    _, _, err = env.run([e2e.CTL, "-c", env.collector_conf, "metrics"], expect=1)
    e2e.check("not running" in err, "no file: %r" % err)
    with open(prom, "w") as f:
        f.write("# HELP tocsin_x \x1b]52;c;aGk=\x07\n")
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "metrics"], expect=1)
    e2e.check(out == "" and "\x1b" not in err and "printable ASCII" in err,
              "escape passed: %r %r" % (out, err))
    os.unlink(prom)
    os.symlink("/etc/passwd", prom)
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "metrics"], expect=1)
    e2e.check(out == "", "followed a symlink: %r" % out)


def test_http_metrics(env):
    """GET /metrics on the API (docs/metrics.md): the live figures, the
    same families as the textfile, rendered at the request (events sent
    show at once, not a second later); a token is needed unless
    api.anonymous_read; only GET, no parameters."""
    import http.client
    env.make_pki()
    log = env.write("logs/app.log", "")
    port = e2e.free_port()
    env.collector_config("api: {listen: 127.0.0.1:%d}\n" % port)
    col = env.collector().start()
    col.wait_log("api: listening on")
    tok = env.ctl("tokens", "create", "prom", "--role", "viewer").strip()
    ctx = ssl.create_default_context(cafile=os.path.join(env.pki, "ca.crt"))

    def get(path, token=tok, method="GET"):
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx,
                                        timeout=20)
        h = {"Authorization": "Bearer " + token} if token else {}
        c.request(method, path, headers=h)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body, r.getheader("Content-Type")

    st, body, ctype = get("/metrics")
    e2e.check(st == 200 and ctype.startswith("text/plain; version=0.0.4"),
              "%d %r %r" % (st, ctype, body[:200]))
    parse(body)

    def fams(series):
        return set(k.split("{")[0] for k in series)
    # The census families appear with the first count (about 1 s), in
    # both alike.
    e2e.wait_for(lambda: fams(parse(get("/metrics")[1])) == fams(metrics(env)[1])
                 and "tocsin_incidents" in fams(metrics(env)[1]), 10,
                 "/metrics and the textfile to name the same families")
    conf = env.agent_config("web-01", [(log, [("oom", "OOM", "error")])])
    env.agent(conf).start().wait_log("connected to")
    n = 23
    append(log, "".join("OOM killed %d\n" % i for i in range(n)))

    def stored():
        st, body, _ = get("/metrics")
        e2e.check(st == 200, "status %d" % st)
        return parse(body).get('tocsin_events_stored_total{origin="agent"}') == n
    e2e.wait_for(stored, 30, "stored_total %d through /metrics" % n)
    s = parse(get("/metrics")[1])
    e2e.check(s["tocsin_agents_connected"] == 1, "agents %r" % s["tocsin_agents_connected"])
    # Refusals: the API's JSON errors.
    for path, token, method, want in (
            ("/metrics", None, "GET", 401),
            ("/metrics", "tct_" + "x" * 43, "GET", 401),
            ("/metrics", tok, "POST", 405),
            ("/metrics?x=1", tok, "GET", 400),
            ("/metrics/", tok, "GET", 404),
            ("/api/v1/metrics", tok, "GET", 404)):
        st, body, ctype = get(path, token, method)
        e2e.check(st == want and ctype == "application/json" and
                  '"status":%d' % want in body.replace(" ", ""),
                  "%s %s: %d %r" % (method, path, st, body))
    env.ctl("tokens", "revoke", "prom")
    e2e.check(get("/metrics")[0] == 401, "a revoked token still reads /metrics")


if __name__ == "__main__":
    e2e.main([test_events_agents_incidents, test_handshake_failures,
              test_expired_counted, test_ctl_refuses, test_http_metrics])
