#!/usr/bin/env python3
"""The HTTP API's refusals (docs/security.md, "HTTP API"): no answer
without a valid token (401, with a JSON error and WWW-Authenticate), a
revoked token refused at the next request, a viewer refused on a write
path (403), malformed requests (bad ids, cursors, limits, parameters,
path traversal, huge headers and targets, wrong methods) refused with a
4xx before the store is read, connections beyond api.max_connections
closed at accept; and through it all the collector keeps ingesting."""

import json
import socket
import ssl
import time

import tocsin_e2e as e2e
from test_api import Api, append, token

HOSTS = ("web-01",)


def start(env):
    env.make_pki(agents=HOSTS)
    port = e2e.free_port()
    env.collector_config("api: {listen: 127.0.0.1:%d, max_connections: 8}\n"
                         % port)
    api = Api(env, port)
    col = env.collector().start()
    col.wait_log("api: listening on")
    log = env.write("logs/app.log", "")
    env.agent(env.agent_config("web-01", [(log, [("oops", "oops",
                                                   "error")])])).start()
    return col, api, log


def refused(api, path, want, tok=None, method="GET", headers=None):
    st, doc, r = api.call(path, tok, method=method, headers=headers)
    e2e.check(st == want and isinstance(doc, dict) and doc.get("status") == want
              and isinstance(doc.get("error"), str)
              and r.getheader("Content-Type") == "application/json",
              "%s %s: %s %r (expected %d)" % (method, path, st, doc, want))
    return doc


def raw(api, data, timeout=10):
    """Send bytes over TLS, return what comes back before the close."""
    s = api.ctx.wrap_socket(socket.create_connection(("127.0.0.1", api.port),
                                                     timeout=timeout),
                            server_hostname="127.0.0.1")
    # The server may close before all of data is sent (a refusal of a
    # huge request): then sendall fails and nothing came back.
    got = b""
    try:
        s.sendall(data)
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
            if b"\r\n\r\n" in got and len(got) > 4096:
                break
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
        pass
    finally:
        s.close()
    return got


def test_tokens(env):
    col, api, log = start(env)
    viewer = token(env, "v", "viewer")
    operator = token(env, "o", "operator")
    admin = token(env, "a", "admin")
    e2e.check(api.call("/api/v1/incidents", viewer)[0] == 200, "viewer reads")

    # No token, a wrong one, a malformed header: 401 and how to log in.
    st, doc, r = api.call("/api/v1/incidents")
    e2e.check(st == 401 and doc == {"error": "a bearer token is required",
                                    "status": 401}
              and r.getheader("WWW-Authenticate") == 'Bearer realm="tocsin"',
              repr(doc))
    refused(api, "/api/v1/incidents", 401, "tct_" + "A" * 43)
    refused(api, "/api/v1/incidents", 401, viewer[:-1])
    refused(api, "/api/v1/incidents", 401, viewer + "x")
    refused(api, "/api/v1/problems/1", 401, "x" * 300)
    # Events (agents' bytes), stats, runbooks: no token, no answer (a
    # viewer's answer: runbooks are not configured here, so 404).
    for path in ("/api/v1/events", "/api/v1/events?host=web-01",
                 "/api/v1/stats", "/api/v1/runbooks"):
        refused(api, path, 401)
        refused(api, path, 401, "tct_" + "A" * 43)
        e2e.check(api.call(path, viewer)[0]
                  == (404 if "runbooks" in path else 200), path)
    # The dashboard's summary and an incident's events: the same.
    for path in ("/api/v1/summary", "/api/v1/incidents/1/events"):
        refused(api, path, 401)
        refused(api, path, 401, "tct_" + "A" * 43)
        e2e.check(api.call(path, viewer)[0] in (200, 404), path)
    e2e.check(api.call("/api/v1/summary", viewer)[0] == 200, "summary")
    for h in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer",
              "Token " + viewer, viewer, "Bearer " + viewer + " extra"):
        refused(api, "/api/v1/incidents", 401, headers={"Authorization": h})
    # Two Authorization headers: ambiguous, refused.
    got = raw(api, ("GET /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nAuthorization: Bearer nope\r\n"
                    "Connection: close\r\n\r\n" % viewer).encode())
    e2e.check(got.startswith(b"HTTP/1.1 401"), repr(got[:80]))

    # Roles: a viewer cannot write; no token cannot either.
    refused(api, "/api/v1/incidents/1/ack", 403, viewer, method="POST")
    refused(api, "/api/v1/problems/1/investigate", 403, viewer, method="POST")
    refused(api, "/api/v1/incidents/1/ack", 401, method="POST")
    # An operator and an admin pass the check (and then find no such
    # incident or problem: 404, nothing recorded).
    refused(api, "/api/v1/incidents/1/resolve", 404, operator, method="POST")
    refused(api, "/api/v1/problems/1/investigate", 404, admin, method="POST")

    # Revoked: refused at the next request.
    env.ctl("tokens", "revoke", "v")
    refused(api, "/api/v1/incidents", 401, viewer)
    refused(api, "/api/v1/events", 401, viewer)
    refused(api, "/api/v1/stats", 401, viewer)
    refused(api, "/api/v1/runbooks", 401, viewer)
    env.ctl("tokens", "revoke", "v", expect=1)
    env.ctl("tokens", "create", "bad name", "--role", "viewer", expect=2)
    env.ctl("tokens", "create", "x", "--role", "root", expect=2)
    env.ctl("tokens", "create", "o", "--role", "viewer", expect=1)
    # The store keeps only hashes.
    dump = open(env.collector_conf.replace("collector.yaml",
                                           "state/collector.db"), "rb").read()
    e2e.check(operator.encode() not in dump and admin.encode() not in dump,
              "a token in the store file")
    keeps_ingesting(env, col, log, "after the token checks")


def keeps_ingesting(env, col, log, when):
    n = len(env.events("web-01"))
    append(log, "oops %s" % when)
    e2e.wait_for(lambda: len(env.events("web-01")) > n, 30,
                 "an event stored %s" % when)
    e2e.check(col.alive(), "collector died")


def test_malformed(env):
    col, api, log = start(env)
    tok = token(env, "v", "viewer")
    for path in ("/api/v1/incidents/abc", "/api/v1/incidents/-1",
                 "/api/v1/incidents/0", "/api/v1/incidents/01",
                 "/api/v1/incidents/1.0", "/api/v1/incidents/0x10",
                 "/api/v1/incidents/99999999999999999999",
                 "/api/v1/problems/%31", "/api/v1/incidents/..",
                 "/api/v1/incidents/%2e%2e",
                 "/api/v1/incidents?cursor=zzz",
                 "/api/v1/incidents?cursor=aTA",       # "i0"
                 "/api/v1/incidents?cursor=eDE",       # "x1"
                 "/api/v1/incidents?cursor=aTE=",      # padding
                 "/api/v1/incidents?cursor=" + "A" * 40,
                 "/api/v1/incidents?cursor=",
                 "/api/v1/incidents?limit=0", "/api/v1/incidents?limit=501",
                 "/api/v1/incidents?limit=-1", "/api/v1/incidents?limit=abc",
                 "/api/v1/incidents?limit=1e3", "/api/v1/incidents?limit",
                 "/api/v1/incidents?limit=%00",
                 "/api/v1/incidents?limit=5&limit=6",
                 "/api/v1/incidents?state=bogus",
                 "/api/v1/incidents?priority=P6",
                 "/api/v1/incidents?host=%zz",
                 "/api/v1/incidents?host=a%0ab",
                 "/api/v1/problems?priority=P1",
                 "/api/v1/problems?state=acknowledged",
                 "/api/v1/incidents?drop=table",
                 "/api/v1/agents?limit=1",
                 "/api/v1/events?cursor=zzz", "/api/v1/events?cursor=aTA",
                 "/api/v1/events?limit=501", "/api/v1/events?state=open",
                 "/api/v1/events?host=a%00b", "/api/v1/events?agent=x",
                 "/api/v1/stats?since=7", "/api/v1/stats?since=0",
                 "/api/v1/stats?since=100000d", "/api/v1/stats?by=x",
                 "/api/v1/stats?limit=1", "/api/v1/stats?by=host&by=rule",
                 "/api/v1/runbooks?limit=1", "/api/v1/runbooks?dir=/etc",
                 "/api/v1/incidents?" + "&".join("state=open" for _ in range(9))):
        refused(api, path, 400, tok)
    for path in ("/", "/api", "/api/v1", "/api/v1/", "/api/v2/incidents",
                 "/api/v1/incidents/", "/api/v1/secrets",
                 "/api/v1/incidents/../../../etc/passwd",
                 "/api/v1/../../etc/passwd", "/../../etc/passwd",
                 "/api/v1/%2e%2e/%2e%2e/etc/passwd",
                 "/api/v1/incidents/1/timeline/x",
                 "/api/v1/agents/web-01", "/api/v1/agents/1",
                 "/api/v1/events/1", "/api/v1/stats/host",
                 "/api/v1/runbooks/..", "/api/v1/runbooks/tls",
                 "/api/v1/incidents/1/delete"):
        refused(api, path, 404, tok,
                method="POST" if path.endswith("delete") else "GET")
    refused(api, "/api/v1/incidents/1/ack", 405, tok)          # GET
    refused(api, "/api/v1/incidents", 405, tok, method="POST")
    refused(api, "/api/v1/incidents/1", 405, tok, method="DELETE")
    refused(api, "/api/v1/incidents", 405, tok, method="PUT")
    refused(api, "/api/v1/events", 405, tok, method="POST")
    refused(api, "/api/v1/stats", 405, tok, method="DELETE")
    refused(api, "/api/v1/incidents?x=" + "a" * 3000, 414, tok)
    # Refused before the token is looked at: no token, still a 4xx.
    refused(api, "/api/v1/incidents/abc", 400)

    # Huge headers, a huge request line, garbage: H2O refuses them itself
    # (a 4xx or a close, never a 2xx, never a crash).
    for data in (b"GET /api/v1/incidents HTTP/1.1\r\nHost: x\r\nX-Big: "
                 + b"a" * 200000 + b"\r\n\r\n",
                 b"GET /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
                 + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n",
                 b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"\x00\x01\x02garbage\r\n\r\n",
                 b"POST /api/v1/incidents/1/ack HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 100000000\r\n\r\n" + b"a" * 70000):
        got = raw(api, data)
        e2e.check(got == b"" or got.startswith(b"HTTP/1.1 4"), repr(got[:80]))
    keeps_ingesting(env, col, log, "after malformed requests")


def test_connection_limit(env):
    col, api, log = start(env)
    tok = token(env, "v", "viewer")
    socks = []
    for _ in range(8):
        socks.append(api.ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", api.port), timeout=10),
            server_hostname="127.0.0.1"))
    # The ninth is closed at accept: the handshake fails or reads EOF.
    closed = False
    try:
        s = api.ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", api.port), timeout=10),
            server_hostname="127.0.0.1")
        s.sendall(b"GET /api/v1/incidents HTTP/1.1\r\nHost: x\r\n\r\n")
        closed = s.recv(100) == b""
        s.close()
    except (ssl.SSLError, ConnectionError, OSError):
        closed = True
    e2e.check(closed, "a connection over api.max_connections was served")
    col.wait_log("api.max_connections")
    for s in socks:
        s.close()
    # Once they are gone, requests are served again.
    def served():
        try:
            return api.call("/api/v1/incidents", tok)[0] == 200
        except (ssl.SSLError, ConnectionError, OSError):
            return False  # the server has not seen the closes yet

    e2e.wait_for(served, 10, "a request after the flood")
    keeps_ingesting(env, col, log, "after the connection flood")


def post(api, path, tok, body, ctype="application/json"):
    return api.call(path, tok, method="POST", body=body,
                    headers={"Content-Type": ctype})


def test_action_bodies(env):
    """The bodies of the actions (docs/security.md, "HTTP API"): JSON
    objects of known members, bounded, refused with a 400 JSON error
    before anything is recorded; text with control characters is stored
    as given and escaped on every output."""
    col, api, log = start(env)
    op = token(env, "op", "operator")
    viewer = token(env, "v", "viewer")
    append(log, "oops one")
    e2e.wait_for(lambda: json.loads(env.ctl("incidents", "list", "--json")),
                 30, "an incident")
    iid = json.loads(env.ctl("incidents", "list", "--json"))[0]["id"]
    path = "/api/v1/incidents/%d/note" % iid

    def actions():
        return json.loads(env.ctl("replay", "--json"))["actions"]

    before = actions()
    # A viewer's note: 403 whatever the body.
    st, doc, _ = post(api, path, viewer, json.dumps({"text": "hi"}))
    e2e.check(st == 403 and doc["status"] == 403, repr(doc))
    # Malformed or wrong bodies: 400 with the JSON error.
    for body in ("{", "not json", "[]", '"text"', "null", "{}",
                 '{"text": ""}', '{"text": 5}', '{"text": null}',
                 '{"text": "a", "text": "b"}', '{"txt": "a"}',
                 '{"text": "a", "incident": 3}',
                 '{"text": "a\u0000b"}', '{"text": "a"} trailing',
                 b'{"text": "\xff\xfe"}'.decode("latin-1"),
                 json.dumps({"text": "x" * 4097})):
        st, doc, r = post(api, path, op, body.encode("latin-1")
                          if isinstance(body, str) else body)
        e2e.check(st == 400 and isinstance(doc, dict)
                  and doc.get("status") == 400
                  and r.getheader("Content-Type") == "application/json",
                  "%r: %s %r" % (body[:40], st, doc))
    for p, body in (("/api/v1/incidents/%d/ack" % iid, '{"key": "why1"}'),
                    ("/api/v1/incidents/%d/resolve" % iid,
                     '{"workaround": "x"}')):
        st, doc, _ = post(api, p, op, body)
        e2e.check(st == 400, "%s %s: %s %r" % (p, body, st, doc))
    # A body where none is read: 400.
    st, doc, _ = api.call("/api/v1/incidents", op, method="GET", body="{}")
    e2e.check(st == 400 and doc["status"] == 400, repr(doc))
    # Oversized: ours (16 KiB) is a 413 JSON; beyond H2O's 64 KiB, H2O
    # refuses before any handler.
    st, doc, _ = post(api, path, op, json.dumps({"text": "x" * 20000}))
    e2e.check(st == 413 and doc["status"] == 413, repr(doc))
    try:
        st, doc, _ = post(api, path, op, "x" * (1 << 20))
        e2e.check(st == 413, "a 1 MiB body: %s" % st)
    except (ConnectionError, OSError):
        pass  # closed by H2O: refused as well
    e2e.check(actions() == before, "a refused body recorded an action")

    # Control characters and markup: stored as given, escaped on output.
    hostile = "fixed \x1b]52;c;aGk=\x07 <img src=x onerror=alert(1)>\r\nX"
    hostile = hostile.encode().decode("unicode_escape")
    st, doc, _ = post(api, path, op, json.dumps({"text": hostile}))
    e2e.check(st == 202, repr(doc))
    e2e.wait_for(lambda: any(hostile == t.get("detail")
                             for t in json.loads(env.ctl(
                                 "incidents", "show", str(iid), "--json"))
                             ["timeline"]), 20, "the note stored as given")
    out = env.ctl("incidents", "show", str(iid))
    e2e.check("\x1b" not in out and "\x07" not in out and "\r" not in out
              and "onerror" in out, repr(out))
    st, doc, r = api.call("/api/v1/incidents/%d" % iid, op)
    raw = json.dumps(doc)
    e2e.check(st == 200 and hostile in [t.get("detail") for t in doc["timeline"]],
              raw)
    keeps_ingesting(env, col, log, "after the action bodies")


if __name__ == "__main__":
    e2e.main([test_tokens, test_malformed, test_connection_limit,
              test_action_bodies])
