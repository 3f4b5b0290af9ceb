#!/usr/bin/env python3
"""The HTTP API end to end (docs/api.md): a real collector fed by real
agents, queried over real TLS (verified against the PKI's CA) with
Python's http.client. Incidents, problems, agents, hints and silences read through the API are
the objects `tocsinctl ... --json` prints, field for field; pages
chained by their cursors give the whole list once, in order; filters
agree with tocsinctl's; tokens are listed without their secret, and a
revoked one stops working at the next request."""

import http.client
import json
import os
import shutil
import sqlite3
import ssl

import tocsin_e2e as e2e

HOSTS = ("web-01", "web-02", "web-03")


class Api:
    """A client for the collector's API at 127.0.0.1:port."""

    def __init__(self, env, port):
        self.port = port
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(env.pki, "ca.crt"))

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port,
                                           context=self.ctx, timeout=20)

    def call(self, path, token=None, method="GET", headers=None, body=None):
        """(status, parsed JSON or raw bytes, response headers)."""
        c = self.conn()
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = raw
        return r.status, doc, r


def api_config(env, extra="", more=""):
    port = e2e.free_port()
    env.collector_config("api: {listen: 127.0.0.1:%d%s}\n%s"
                         % (port, extra, more))
    return Api(env, port)


# A runbook for the spread problem's class: one hint per host.
RUNBOOK = """---
id: tls
title: Certificate expired
match: {class: [tls-expired]}
---
Renew the certificate.
"""


def token(env, name, role):
    return env.ctl("tokens", "create", name, "--role", role).strip()


def start(env, extra=""):
    env.make_pki(agents=HOSTS)
    env.write("runbooks/tls.md", RUNBOOK)
    api = api_config(env, extra, "runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("api: listening on https://127.0.0.1:%d" % api.port)
    logs = {}
    for h in HOSTS:
        logs[h] = env.write("logs/%s.log" % h, "")
        rules = [("r%d" % i, "err%d" % i, "error") for i in range(5)]
        rules.append(("tls-expired", "certificate expired", "warning"))
        rules.append(("panic", "kernel panic", "critical"))
        env.agent(env.agent_config(
            h, [(logs[h], rules)],
            extra="hints: {public_key: pki/hint-signing.pub}\n")).start()
    return col, api, logs


def append(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")


def ctl_json(env, *args):
    return json.loads(env.ctl(*args, "--json"))


def seed(env, logs, total):
    """Five incidents on web-01 and one spread problem over HOSTS; wait
    until the store holds total incidents and that problem."""
    for i in range(5):
        append(logs["web-01"], "err%d here" % i)
    for h in HOSTS:
        append(logs[h], "certificate expired for api")
    e2e.wait_for(lambda: len(ctl_json(env, "incidents", "list")) == total,
                 30, "%d incidents" % total)
    e2e.wait_for(lambda: len(ctl_json(env, "problems", "list")) == 1, 30,
                 "the spread problem")


def test_api(env):
    col, api, logs = start(env)
    viewer = token(env, "dash", "viewer")
    e2e.check(viewer.startswith("tct_") and len(viewer) == 47, viewer)
    listed = ctl_json(env, "tokens", "list")
    e2e.check([(t["name"], t["role"]) for t in listed] == [("dash", "viewer")]
              and viewer not in json.dumps(listed), repr(listed))

    # Five incidents on web-01, one spread problem over the three hosts.
    seed(env, logs, 8)

    # The list: the very objects tocsinctl prints.
    st, doc, r = api.call("/api/v1/incidents", viewer)
    e2e.check(st == 200 and r.getheader("Content-Type") == "application/json",
              "%s %r" % (st, doc))
    e2e.check(doc["incidents"] == ctl_json(env, "incidents", "list")
              and doc["next_cursor"] is None, repr(doc))
    # Filters as tocsinctl's.
    for q, args in (("state=open", ["--state", "open"]),
                    ("priority=P3", ["--priority", "P3"]),
                    ("host=web-02", ["--host", "web-02"]),
                    ("state=resolved", ["--state", "resolved"])):
        st, doc, _ = api.call("/api/v1/incidents?" + q, viewer)
        e2e.check(st == 200 and doc["incidents"]
                  == ctl_json(env, "incidents", "list", *args), q)
    # Pages of 3 chained by their cursors: the whole list, once, in order.
    got, path, pages = [], "/api/v1/incidents?limit=3", 0
    while path:
        st, doc, _ = api.call(path, viewer)
        e2e.check(st == 200 and len(doc["incidents"]) <= 3, repr(doc))
        got += doc["incidents"]
        pages += 1
        path = ("/api/v1/incidents?limit=3&cursor=" + doc["next_cursor"]
                if doc["next_cursor"] else None)
    e2e.check(pages == 3 and got == ctl_json(env, "incidents", "list"),
              "%d pages" % pages)

    # One incident with its timeline: tocsinctl show without its events.
    iid = got[0]["id"]
    st, doc, _ = api.call("/api/v1/incidents/%d" % iid, viewer)
    show = ctl_json(env, "incidents", "show", str(iid))
    del show["events"]
    e2e.check(st == 200 and doc == show and doc["timeline"], repr(doc))
    st, doc, _ = api.call("/api/v1/incidents/99999", viewer)
    e2e.check(st == 404 and doc == {"error": "no incident 99999",
                                     "status": 404}, repr(doc))

    # Problems, list and one with candidates, links, RCA and timeline.
    st, doc, _ = api.call("/api/v1/problems", viewer)
    e2e.check(st == 200 and doc["problems"] == ctl_json(env, "problems", "list")
              and len(doc["problems"]) == 1, repr(doc))
    pid = doc["problems"][0]["id"]
    st, doc, _ = api.call("/api/v1/problems/%d" % pid, viewer)
    e2e.check(st == 200 and doc == ctl_json(env, "problems", "show", str(pid))
              and len(doc["candidates"]) == 3 and len(doc["links"]) == 3,
              repr(doc))
    st, doc, _ = api.call("/api/v1/problems?state=closed", viewer)
    e2e.check(st == 200 and doc == {"problems": [], "next_cursor": None},
              repr(doc))

    # Agents: the table tocsinctl agents list prints (a heartbeat may
    # land between the two reads: compare until they agree).
    def agents_agree():
        st, doc, _ = api.call("/api/v1/agents", viewer)
        return (st == 200 and doc["next_cursor"] is None
                and doc["agents"] == ctl_json(env, "agents", "list")
                and [a["name"] for a in doc["agents"]] == list(HOSTS))
    e2e.wait_for(agents_agree, 20, "the agents through the API")

    # Hints, oldest first, paged: those tocsinctl hints list gives, once
    # the agents have acked them all (one per incident, one per problem
    # member: six).
    e2e.wait_for(lambda: [h["state"] for h in ctl_json(env, "hints", "list")]
                 == ["acked"] * 6, 30, "six acked hints")
    got, path = [], "/api/v1/hints?limit=2"
    while path:
        st, doc, _ = api.call(path, viewer)
        e2e.check(st == 200 and len(doc["hints"]) <= 2, repr(doc))
        got += doc["hints"]
        path = ("/api/v1/hints?limit=2&cursor=" + doc["next_cursor"]
                if doc["next_cursor"] else None)
    e2e.check(got == ctl_json(env, "hints", "list") and len(got) == 6,
              repr(got))
    st, doc, _ = api.call("/api/v1/hints?agent=web-02&state=acked", viewer)
    e2e.check(st == 200 and doc["hints"] == ctl_json(
        env, "hints", "list", "--agent", "web-02", "--state", "acked")
        and len(doc["hints"]) == 2, repr(doc))

    # Silences: not ended ones, or all (tocsinctl silences list [--all]).
    env.ctl("silences", "add", "--match", "host=web-02", "--duration", "1h",
            "--comment", "deploy \x1b]52;c;x\x07", "--user", "alice")
    sid = env.ctl("silences", "add", "--match", "rule=r1", "--duration", "1h",
                  "--comment", "short", "--user", "bob")
    sid = ctl_json(env, "silences", "list")[0]["id"]
    env.ctl("silences", "expire", str(sid), "--user", "bob")
    for q, args in (("", []), ("?all=true", ["--all"]), ("?all=false", [])):
        st, doc, _ = api.call("/api/v1/silences" + q, viewer)
        e2e.check(st == 200 and doc["silences"]
                  == ctl_json(env, "silences", "list", *args)
                  and doc["next_cursor"] is None, q + repr(doc))
    e2e.check(len(api.call("/api/v1/silences?all=true", viewer)[1]["silences"])
              == 2 and len(api.call("/api/v1/silences", viewer)[1]["silences"])
              == 1, "silences")

    # A revoke takes effect at the next request, no reload.
    env.ctl("tokens", "revoke", "dash")
    st, doc, _ = api.call("/api/v1/incidents", viewer)
    e2e.check(st == 401 and doc["status"] == 401, repr(doc))
    listed = ctl_json(env, "tokens", "list", "--all")
    e2e.check(listed[0]["revoked_at"] > 0, repr(listed))
    e2e.check(ctl_json(env, "tokens", "list") == [], "a revoked token listed")
    # The name can be issued again.
    again = token(env, "dash", "viewer")
    e2e.check(api.call("/api/v1/problems", again)[0] == 200, "reissued token")
    e2e.check(json.loads(env.ctl("replay", "--json"))["identical"], "replay")


def store_counts(env):
    """The dashboard's header counted straight from the store."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        env.dir, "state", "collector.db"), uri=True, timeout=10)
    try:
        inc = {(st, p): n for st, p, n in db.execute(
            "SELECT state, priority, count(*) FROM incidents"
            " GROUP BY state, priority")}
        prob = dict(db.execute("SELECT state, count(*) FROM problems"
                               " GROUP BY state").fetchall())
        agents = db.execute("SELECT count(*), sum(connected) FROM agents"
                            ).fetchone()
    finally:
        db.close()

    def by_prio(st):
        d = {"P%d" % p: inc.get((st, p), 0) for p in range(1, 6)}
        d["total"] = sum(d.values())
        return d
    return {"incidents": {"open": by_prio("open"),
                          "acknowledged": by_prio("acknowledged")},
            "problems": {k: prob.get(k, 0) for k in
                         ("open", "investigating", "known_error")},
            "agents": {"connected": agents[1] or 0, "total": agents[0]}}


def test_api_summary(env):
    """GET /api/v1/summary (the dashboard's header) agrees with COUNTs on
    the store after real agents opened incidents, an ack and a problem
    action; order=priority pages the open incidents P1 first, newest
    first within one, chained by their cursors; hints order=newest."""
    col, api, logs = start(env)
    viewer = token(env, "dash", "viewer")
    # The oldest incident has the highest priority: by priority it comes
    # first, by id last.
    append(logs["web-02"], "kernel panic")
    e2e.wait_for(lambda: len(ctl_json(env, "incidents", "list")) == 1, 30,
                 "the first incident")
    seed(env, logs, 9)
    e2e.wait_for(lambda: api.call("/api/v1/summary", viewer)[1]["agents"]
                 ["connected"] == 3, 20, "three agents connected")
    st, doc, r = api.call("/api/v1/summary", viewer)
    want = store_counts(env)
    e2e.check(st == 200 and doc == want and
              doc["incidents"]["open"]["total"] == 9 and
              doc["problems"]["open"] == 1, "%r != %r" % (doc, want))
    # An ack and a problem action move the counts, as in the store.
    incs = ctl_json(env, "incidents", "list")
    env.ctl("incidents", "ack", str(incs[1]["id"]), "--user", "alice")
    pid = ctl_json(env, "problems", "list")[0]["id"]
    env.ctl("problems", "investigate", str(pid), "--user", "alice")
    e2e.wait_for(lambda: api.call("/api/v1/summary", viewer)[1]["problems"]
                 ["investigating"] == 1 and api.call(
                     "/api/v1/summary", viewer)[1]["incidents"]
                 ["acknowledged"]["total"] == 1, 20, "the actions applied")
    st, doc, _ = api.call("/api/v1/summary", viewer)
    want = store_counts(env)
    e2e.check(st == 200 and doc == want and
              doc["incidents"]["open"]["total"] == 8, "%r != %r" % (doc, want))

    # order=priority: the open incidents P1 first, then newest, in pages
    # of 2 chained by their cursors: each once, in the store's order.
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        env.dir, "state", "collector.db"), uri=True, timeout=10)
    order = [i for (i,) in db.execute(
        "SELECT id FROM incidents WHERE state = 'open'"
        " ORDER BY priority, id DESC")]
    db.close()
    e2e.check(len({i["priority"] for i in incs}) > 1 and order != sorted(
        order, reverse=True), repr(order))
    got, path, pages = [], "/api/v1/incidents?state=open&order=priority" \
        "&limit=2", 0
    while path:
        st, doc, _ = api.call(path, viewer)
        e2e.check(st == 200 and len(doc["incidents"]) <= 2, repr(doc))
        got += doc["incidents"]
        pages += 1
        path = ("/api/v1/incidents?state=open&order=priority&limit=2"
                "&cursor=" + doc["next_cursor"] if doc["next_cursor"] else None)
    e2e.check([i["id"] for i in got] == order and pages == 4,
              "%r != %r" % ([i["id"] for i in got], order))
    byid = {i["id"]: i for i in ctl_json(env, "incidents", "list")}
    e2e.check(all(i == byid[i["id"]] for i in got), "objects differ")
    # A state and a priority: that priority's open ones, newest first.
    p = got[-1]["priority"]
    st, doc, _ = api.call("/api/v1/incidents?state=open&priority=P%d" % p,
                          viewer)
    e2e.check(st == 200 and doc["incidents"] == ctl_json(
        env, "incidents", "list", "--state", "open", "--priority", "P%d" % p),
        repr(doc))
    # Hints newest first: the oldest-first list reversed.
    e2e.wait_for(lambda: len(ctl_json(env, "hints", "list")) == 6, 30,
                 "six hints")
    got, path = [], "/api/v1/hints?order=newest&limit=4"
    while path:
        st, doc, _ = api.call(path, viewer)
        e2e.check(st == 200 and len(doc["hints"]) <= 4, repr(doc))
        got += doc["hints"]
        path = ("/api/v1/hints?order=newest&limit=4&cursor=" +
                doc["next_cursor"] if doc["next_cursor"] else None)
    e2e.check([h["id"] for h in got] == [h["id"] for h in reversed(
        ctl_json(env, "hints", "list"))], repr(got))

    # Refusals: the summary takes no parameter and no POST, needs a
    # token; order=priority needs a state; a cursor keeps its order.
    cur = api.call("/api/v1/incidents?state=open&order=priority&limit=1",
                   viewer)[1]["next_cursor"]
    icur = api.call("/api/v1/incidents?state=open&limit=1",
                    viewer)[1]["next_cursor"]
    for path, method, tok, status in (
            ("/api/v1/summary", "GET", None, 401),
            ("/api/v1/summary", "GET", "tct_nope", 401),
            ("/api/v1/summary?limit=5", "GET", viewer, 400),
            ("/api/v1/summary", "POST", viewer, 405),
            ("/api/v1/summary/1", "GET", viewer, 404),
            ("/api/v1/incidents?order=priority", "GET", viewer, 400),
            ("/api/v1/incidents?state=open&order=prio", "GET", viewer, 400),
            ("/api/v1/incidents?state=open&cursor=" + cur, "GET", viewer,
             400),
            ("/api/v1/incidents?state=open&order=priority&cursor=" + icur,
             "GET", viewer, 400),
            ("/api/v1/problems?order=priority", "GET", viewer, 400),
            ("/api/v1/hints?cursor=" + cur, "GET", viewer, 400),
            ("/api/v1/hints?order=priority", "GET", viewer, 400)):
        st, doc, _ = api.call(path, tok, method=method)
        e2e.check(st == status and doc["status"] == status,
                  "%s %s: %s %r" % (method, path, st, doc))

# A line an agent may send: NUL, C0 and C1 controls, an escape sequence,
# invalid UTF-8 (a lone byte, a broken pair, a surrogate), quotes.
HOSTILE = (b'err1 \x00nul \x01\x1b[31mred\x7f \xc2\x85 \xff\xfe \xc3\x28 '
           b'\xed\xa0\x80 "q" \\ end')


def events_pages(api, tok, query, limit):
    """Every event of the API's events listing, chained pages of limit."""
    got, path, pages = [], "/api/v1/events?limit=%d%s" % (limit, query), 0
    while path:
        st, doc, _ = api.call(path, tok)
        e2e.check(st == 200 and len(doc["events"]) <= limit, repr(doc))
        got += doc["events"]
        pages += 1
        path = ("/api/v1/events?limit=%d%s&cursor=%s"
                % (limit, query, doc["next_cursor"])
                if doc["next_cursor"] else None)
    return got, pages


def test_api_events(env):
    """GET /api/v1/events: tocsinctl events list --json's objects, newest
    first, paged by a stable cursor, host= as --host, hostile bytes from
    an agent escaped and parsed; GET /api/v1/stats as tocsinctl stats
    --json, GET /api/v1/runbooks as tocsinctl runbooks list --json."""
    col, api, logs = start(env)
    viewer = token(env, "dash", "viewer")
    for i in range(5):
        append(logs["web-01"], "err%d here" % i)
    with open(logs["web-02"], "ab") as f:
        f.write(HOSTILE + b"\n")
    append(logs["web-03"], "err2 there")
    e2e.wait_for(lambda: len(ctl_json(env, "events", "list",
                                      "--limit", "0")) >= 7, 30, "events")
    e2e.wait_for(lambda: len(ctl_json(env, "incidents", "list")) == 7, 30,
                 "seven incidents")
    every = ctl_json(env, "events", "list", "--limit", "0")
    # Chained pages of 2: the whole log once, newest first.
    got, pages = events_pages(api, viewer, "", 2)
    e2e.check(got == every[::-1], "events: %r != %r" % (got, every[::-1]))
    e2e.check(pages == (len(every) + 1) // 2, "%d pages" % pages)
    st, doc, _ = api.call("/api/v1/events?limit=3", viewer)
    e2e.check(doc["events"] == ctl_json(env, "events", "list", "--limit",
                                        "3")[::-1], repr(doc))
    for h in HOSTS:
        got, _ = events_pages(api, viewer, "&host=" + h, 1)
        e2e.check(got == ctl_json(env, "events", "list", "--host", h,
                                  "--limit", "0")[::-1] and got, h)
    got, _ = events_pages(api, viewer, "&host=nosuch", 5)
    e2e.check(got == [], repr(got))
    # The hostile message: valid JSON, controls escaped, bad bytes as
    # U+FFFD, the same as tocsinctl's.
    st, raw, _ = api.call("/api/v1/events?host=web-02", viewer)
    msgs = [e["message"] for e in raw["events"] if "err1" in e["message"]]
    e2e.check(len(msgs) == 1, repr(raw))
    m = msgs[0]
    e2e.check("\x00nul" in m and "\x01" in m and "\x1b[31m" in m
              and "\x7f" in m and "\x85" in m and "\ufffd" in m and '"q" \\ end' in m,
              repr(m))
    c = api.conn()
    c.request("GET", "/api/v1/events?host=web-02",
              headers={"Authorization": "Bearer " + viewer})
    body = c.getresponse().read()
    c.close()
    # As tocsinctl writes it: no raw control byte, DEL or C1 included
    # (jansson would write those two raw), no byte outside UTF-8.
    e2e.check(all(0x20 <= b != 0x7f for b in body) and b"\xff" not in body
              and b"\xc2\x85" not in body and b"\\u007f" in body
              and b"\\u0085" in body, repr(body))
    body.decode("utf-8")  # strict: raises on invalid UTF-8
    # A cursor survives new events: the page after it is unchanged.
    st, first, _ = api.call("/api/v1/events?limit=2", viewer)
    nxt = "/api/v1/events?limit=2&cursor=" + first["next_cursor"]
    before = api.call(nxt, viewer)[1]
    append(logs["web-03"], "err3 later")
    e2e.wait_for(lambda: api.call("/api/v1/events?limit=1", viewer)[1]
                 ["events"][0]["message"].startswith("err3 later"), 30,
                 "the new event")
    e2e.check(api.call(nxt, viewer)[1] == before, "cursor moved")

    # Stats: the groups tocsinctl stats --json gives, by each key.
    for q, args in (("", []), ("?by=host", ["--by", "host"]),
                    ("?by=priority&since=1h", ["--by", "priority", "--since",
                                               "1h"]),
                    ("?by=rule", ["--by", "rule"]),
                    ("?by=service", ["--by", "service"])):
        st, doc, _ = api.call("/api/v1/stats" + q, viewer)
        want = json.loads(env.ctl("stats", *args, "--json"))
        e2e.check(st == 200 and doc["groups"] == want["groups"]
                  and doc["by"] == want["by"]
                  and abs(doc["since"] - want["since"]) < 60 * 10**9
                  and set(doc) == set(want), "%s: %r != %r" % (q, doc, want))
        e2e.check((doc["collector"] is None) == (want["collector"] is None)
                  and (doc["collector"] is None
                       or set(doc["collector"]) == set(want["collector"])),
                  repr(doc["collector"]))
    e2e.check(doc["collector"] is not None and doc["collector"]["pid"] > 0,
              repr(doc))
    st, doc, _ = api.call("/api/v1/stats?by=host", viewer)
    e2e.check(sorted(g["key"] for g in doc["groups"]) == list(HOSTS),
              repr(doc))

    # Runbooks: tocsinctl runbooks list --json, a broken file included.
    env.write("runbooks/broken.md", "---\nid: [\n---\nx\n")
    st, doc, _ = api.call("/api/v1/runbooks", viewer)
    want = ctl_json(env, "runbooks", "list")
    e2e.check(st == 200 and doc == want and len(doc["runbooks"]) == 1
              and doc["runbooks"][0]["id"] == "tls"
              and len(doc["skipped"]) == 1, "%r != %r" % (doc, want))


def test_anonymous_read(env):
    """api.anonymous_read: true answers reads without a token, never a
    write; -n checks the api: section; HTTP/2 answers too."""
    env.make_pki()
    api = api_config(env, ", anonymous_read: true")
    env.run([e2e.COLLECTOR, "-n", "-c", env.collector_conf])
    col = env.collector().start()
    col.wait_log("anonymous reads allowed")
    st, doc, _ = api.call("/api/v1/incidents")
    e2e.check(st == 200 and doc == {"incidents": [], "next_cursor": None},
              repr(doc))
    # No runbooks configured: a 404, as tocsinctl runbooks list fails.
    st, doc, _ = api.call("/api/v1/runbooks")
    e2e.check(st == 404 and "no runbooks" in doc["error"], repr(doc))
    st, doc, _ = api.call("/api/v1/incidents/1/ack", method="POST")
    e2e.check(st == 401, repr(doc))
    # A bad token is still refused: anonymous is not "any token".
    st, doc, _ = api.call("/api/v1/incidents", "tct_nope")
    e2e.check(st == 401, repr(doc))
    # HTTP/2 (ALPN h2) through curl, where it is installed.
    curl = shutil.which("curl")
    if curl:
        _, out, _ = env.run([curl, "-sS", "--http2", "--cacert",
                             os.path.join(env.pki, "ca.crt"), "-o", "/dev/null",
                             "-w", "%{http_version} %{http_code}",
                             "https://127.0.0.1:%d/api/v1/problems" % api.port])
        e2e.check(out == "2 200", "curl --http2: %r" % out)


if __name__ == "__main__":
    e2e.main([test_api, test_api_summary, test_api_events,
              test_anonymous_read])
