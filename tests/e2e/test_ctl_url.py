#!/usr/bin/env python3
"""tocsinctl --url (docs/api.md, "tocsinctl over the API"): against a
real collector fed by real agents, `incidents list` (table and JSON,
with filters, pages of api.max_page followed by next_cursor) prints
byte for byte what the local tocsinctl prints, and so do `problems
list`, `silences list [--all]`, `incidents show` (timeline and latest
events, hostile bytes escaped alike), `problems show` (candidates,
links, RCA, timeline) and `stats` (but the figures that move with
the clock); GET /api/v1/incidents/ID/events pages an incident's
events; an ack and a note, and problem actions, made
through --url land on the timeline under the token's name; a viewer's
ack is refused as "tocsinctl: HOST: 403 ..."; an unknown id is the
local error; `incidents list --silenced` and `silences add|expire`
(POST /api/v1/silences, .../ID/expire, each member refused when
wrong); commands not served over the API are refused clearly."""

import json
import os
import re
import time

import tocsin_e2e as e2e
from test_api import HOSTS, append, ctl_json, seed, start, token


def token_file(env, name, role):
    path = os.path.join(env.dir, name + ".token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token(env, name, role) + "\n")
    return path


def remote(env, api, tf, *args, expect=0):
    argv = [e2e.CTL, "--url", "https://127.0.0.1:%d" % api.port,
            "--token-file", tf, "--cacert", os.path.join(env.pki, "ca.crt")]
    return env.run(argv + list(args), expect=expect)


def same(env, api, tf, *args):
    """The local and the remote output of args, checked equal."""
    local = env.ctl(*args)
    rc, out, err = remote(env, api, tf, *args)
    e2e.check(out == local and err == "",
              "%r differ:\nlocal:\n%s\nremote:\n%s\nstderr: %s"
              % (args, local, out, err))
    return out


def stats_norm(out):
    """stats output without what moves between two runs: the window's
    start (each side's clock) and the collector's live figures."""
    out = re.sub(r'"since":\d+', '"since":N', out)
    out = re.sub(r'"collector":\{[^}]*\}', '"collector":{..}', out)
    return re.sub(r"(?m)^collector \(pid \d+.*$", "collector (..)", out)


def same_stats(env, api, tf, *args):
    local = env.ctl(*args)
    rc, out, err = remote(env, api, tf, *args)
    e2e.check(stats_norm(out) == stats_norm(local) and err == "",
              "%r differ:\nlocal:\n%s\nremote:\n%s\nstderr: %s"
              % (args, local, out, err))
    return out


LISTS = [
    ("incidents", "list"),
    ("incidents", "list", "--json"),
    ("--json", "incidents", "list"),
    ("incidents", "list", "--state", "open"),
    ("incidents", "list", "--priority", "P3", "--json"),
    ("incidents", "list", "--host", "web-02"),
    ("incidents", "list", "--host", "web 02&x=1", "--json"),
    ("incidents", "list", "--state", "closed"),
    ("problems", "list"),
    ("problems", "list", "--json"),
    ("problems", "list", "--state", "open", "--json"),
    ("problems", "list", "--state", "closed"),
    ("silences", "list"),
    ("silences", "list", "--json"),
    ("silences", "list", "--all", "--json"),
    ("incidents", "list", "--silenced"),
    ("incidents", "list", "--silenced", "--json", "--state", "open"),
]


def test_ctl_url(env):
    # Pages of 2: eight incidents take four pages and three cursors.
    col, api, logs = start(env, ", max_page: 2")
    viewer = token_file(env, "dash", "viewer")
    oncall = token_file(env, "oncall", "operator")
    # A silence marks r4's incident: its note and the block under the
    # table come from the silence object of the API.
    env.ctl("silences", "add", "--match", "rule=r4", "--duration", "1h",
            "--comment", "quiet \x1b[31m please")
    seed(env, logs, 8)
    e2e.wait_for(lambda: all(i["problem"] for i in ctl_json(
        env, "incidents", "list") if i["rule"] == "tls-expired"), 30,
        "the problem's links")

    for args in LISTS:
        same(env, api, viewer, *args)
    out = same(env, api, viewer, "incidents", "list")
    e2e.check(out.count("\n") >= 9 and "silenced by #1 until" in out
              and "silence 1: rule=r4" in out and "\x1b" not in out, out)
    js = same(env, api, viewer, "incidents", "list", "--json")
    e2e.check(js.count('"id":') >= 8 and '"problem":1' in js, js)
    out = same(env, api, viewer, "problems", "list")
    e2e.check("spread" in out and "web-0" in out, out)

    # Actions: the operator's ack and note, on the timeline as oncall.
    iid = [i for i in ctl_json(env, "incidents", "list")
           if i["rule"] == "r1"][0]["id"]
    _, out, err = remote(env, api, oncall, "incidents", "ack", str(iid),
                         "--comment", "looking")
    e2e.check(out.startswith("incident %d: ack by oncall recorded (action "
                             % iid) and err == "", out + err)
    _, out, _ = remote(env, api, oncall, "incidents", "note", str(iid),
                       "rebooting db-1")
    e2e.check(out.startswith("incident %d: note by oncall recorded" % iid),
              out)

    def timeline():
        return [(t["what"], t["who"], t.get("detail")) for t in
                ctl_json(env, "incidents", "show", str(iid))["timeline"]]
    e2e.wait_for(lambda: any(w == "acknowledged" and who == "user:oncall"
                             for w, who, _ in timeline()), 20,
                 "the ack on the timeline")
    e2e.wait_for(lambda: ("note", "user:oncall", "rebooting db-1")
                 in timeline() or any(who == "user:oncall" and
                                      d == "rebooting db-1"
                                      for _, who, d in timeline()), 20,
                 "the note on the timeline")
    same(env, api, viewer, "incidents", "list", "--state", "acknowledged")
    same(env, api, viewer, "incidents", "list")

    # Problem actions: each member the API wants, from the same argv.
    pid = ctl_json(env, "problems", "list")[0]["id"]
    for args in (("investigate",), ("note", "cert rotation"),
                 ("rca", "why1", "cert not rotated"),
                 ("known-error", "no rotation job", "renew by hand")):
        _, out, err = remote(env, api, oncall, "problems", args[0], str(pid),
                             *args[1:])
        e2e.check(out.startswith("problem %d: %s by oncall recorded"
                                 % (pid, args[0])) and err == "", out + err)

    def pshow():
        return ctl_json(env, "problems", "show", str(pid))
    e2e.wait_for(lambda: pshow()["state"] == "known_error", 20,
                 "the known error applied")
    p = pshow()
    e2e.check(p["known_error"]["root_cause"] == "no rotation job"
              and p["known_error"]["workaround"] == "renew by hand"
              and p["rca"]["whys"][0] == "cert not rotated"
              and "cert rotation" in str(p["timeline"])
              and "user:oncall" in str(p["timeline"]), repr(p))
    same(env, api, viewer, "problems", "list")
    same(env, api, viewer, "problems", "list", "--state", "known_error")
    # An ended silence (expired by hand) reads the same both ways.
    env.ctl("silences", "add", "--match", "host=web-03", "--duration", "2h",
            "--comment", "maint")
    env.ctl("silences", "expire", "2")
    out = same(env, api, viewer, "silences", "list", "--all")
    e2e.check("maint" in out and "ended" in out and "quiet" in out, out)
    same(env, api, viewer, "silences", "list", "--all", "--json")
    same(env, api, viewer, "silences", "list")

    # incidents show: more events than it shows (the latest 10), one
    # with control characters (valid UTF-8: bytes that are not reach
    # the API as U+FFFD, docs/api.md); problems show; stats.
    for i in range(12):
        append(logs["web-01"], "err1 again %d" % i)
    append(logs["web-01"], "err1 \x00nul \x01\x1b[31mred\x7f \u0085 end")
    e2e.wait_for(lambda: "end" in str(ctl_json(env, "incidents", "show",
                                               str(iid))["events"]), 30,
                 "the hostile line in the incident's events")
    ids = [i["id"] for i in ctl_json(env, "incidents", "list")]
    for i in ids:
        same(env, api, viewer, "incidents", "show", str(i))
        same(env, api, viewer, "incidents", "show", str(i), "--json")
    out = same(env, api, viewer, "incidents", "show", str(iid))
    e2e.check("\\x1b[31mred" in out and "\x1b" not in out
              and "user:oncall" in out and "err1 again 11" in out
              and "err1 again 1\n" not in out, out)
    js = same(env, api, viewer, "--json", "incidents", "show", str(iid))
    e2e.check(len(json.loads(js)["events"]) == 10, js)
    for args in (("problems", "show", str(pid)),
                 ("problems", "show", str(pid), "--json")):
        out = same(env, api, viewer, *args)
        e2e.check("cert not rotated" in out and "spread" in out
                  and "web-0" in out, out)
    for args in (("stats",), ("stats", "--json"), ("--json", "stats"),
                 ("stats", "--by", "host"), ("stats", "--by", "rule"),
                 ("stats", "--since", "24h", "--by", "priority", "--json"),
                 ("stats", "--by", "service", "--json")):
        same_stats(env, api, viewer, *args)
    out = same_stats(env, api, viewer, "stats", "--by", "host")
    e2e.check("web-01" in out and "collector (pid" in out, out)
    e2e.check('"collector":{"pid":' in
              same_stats(env, api, viewer, "stats", "--json"), out)

    # GET /api/v1/incidents/ID/events: pages of 2 chained by the cursor
    # list every event of the incident, newest first, once each.
    tok = open(viewer).read().strip()
    got, path = [], "/api/v1/incidents/%d/events?limit=2" % iid
    while path:
        st, doc, _ = api.call(path, tok)
        e2e.check(st == 200 and len(doc["events"]) <= 2, repr(doc))
        got += doc["events"]
        path = ("/api/v1/incidents/%d/events?limit=2&cursor=%s"
                % (iid, doc["next_cursor"]) if doc["next_cursor"] else None)
    msgs = [e["message"] for e in got]
    # scan= bounds the host's events a page reads (a full page of 2 stops
    # sooner); scanned says how many it read.
    st, doc, _ = api.call("/api/v1/incidents/%d/events?scan=1" % iid, tok)
    e2e.check(st == 200 and doc["scanned"] == 1 and doc["next_cursor"]
              and len(doc["events"]) == 1, repr(doc))
    st, doc, _ = api.call("/api/v1/incidents/%d/events?scan=3" % iid, tok)
    e2e.check(st == 200 and doc["scanned"] == 2 and doc["next_cursor"]
              and len(doc["events"]) == 2, repr(doc))
    e2e.check(len(msgs) == 14 and msgs[0].endswith(" end")
              and msgs[1] == "err1 again 11" and msgs[-1] == "err1 here"
              and all(e["rule"] == "r1" for e in got), repr(msgs))
    for path, want in (("/api/v1/incidents/99999/events", 404),
                       ("/api/v1/incidents/1/events?host=x", 400),
                       ("/api/v1/incidents/1/events?scan=5001", 400),
                       ("/api/v1/incidents/1/events?scan=0", 400),
                       ("/api/v1/incidents/x/events", 400),
                       ("/api/v1/problems/1/events", 404)):
        st, doc, _ = api.call(path, tok)
        e2e.check(st == want and doc["status"] == want, "%s: %r"
                  % (path, doc))
    st, _, _ = api.call("/api/v1/incidents/%d/events" % iid)
    e2e.check(st == 401, "no token: %d" % st)

    # Unknown ids: the local error and exit status.
    for args in (("incidents", "show", "99999"),
                 ("problems", "show", "99999", "--json")):
        local = env.run([e2e.CTL, "-c", env.collector_conf] + list(args),
                        expect=1)
        _, out, err = remote(env, api, viewer, *args, expect=1)
        e2e.check(out == "" and err == local[2] and "no " in err,
                  "%r: %r vs %r" % (args, err, local[2]))
    # A token that is not one: the API's 401, nothing on stdout.
    bad = os.path.join(env.dir, "bad.token")
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("tct_" + "A" * 43 + "\n")
    for args in (("incidents", "show", str(iid)), ("problems", "show",
                                                    str(pid)), ("stats",)):
        _, out, err = remote(env, api, bad, *args, expect=1)
        e2e.check(out == "" and err ==
                  "tocsinctl: 127.0.0.1: 401 invalid or revoked token\n",
                  "%r: %s" % (args, err))

    # silences add and expire: recorded with the token's name; an
    # unknown or ended silence says what local says.
    _, out, err = remote(env, api, oncall, "silences", "add", "--match",
                         "host=web-02", "--match", "label:env=prod",
                         "--duration", "2h", "--comment", "window \x1b x")
    e2e.check(out.startswith("silence 3: add by oncall recorded (")
              and "host=web-02 label:env=prod" in out and err == "",
              out + err)

    def sil3():
        return [x for x in ctl_json(env, "silences", "list", "--all")
                if x["id"] == 3]
    e2e.wait_for(lambda: sil3() and sil3()[0]["state"] == "active", 20,
                 "the silence added over the API")
    e2e.check(sil3()[0]["user"] == "oncall"
              and sil3()[0]["comment"] == "window \x1b x", repr(sil3()))
    same(env, api, viewer, "silences", "list", "--all")
    _, out, err = remote(env, api, oncall, "silences", "expire", "3")
    e2e.check(out.startswith("silence 3: expire by oncall recorded (action ")
              and err == "", out + err)
    e2e.wait_for(lambda: sil3()[0]["state"] == "ended", 20,
                 "the silence expired over the API")
    same(env, api, viewer, "silences", "list", "--all", "--json")
    for args in (("silences", "expire", "3"), ("silences", "expire", "99")):
        local = env.run([e2e.CTL, "-c", env.collector_conf] + list(args),
                        expect=1)
        _, out, err = remote(env, api, oncall, *args, expect=1)
        e2e.check(out == "" and err == local[2] and "silence" in err,
                  "%r: %r vs %r" % (args, err, local[2]))
    _, out, err = remote(env, api, viewer, "silences", "add", "--match",
                         "rule=r1", "--duration", "1h", "--comment", "x",
                         expect=1)
    e2e.check(out == "" and err ==
              "tocsinctl: 127.0.0.1: 403 this needs the operator role\n", err)
    # The endpoint's refusals: each member checked, nothing recorded.
    op = open(oncall).read().strip()
    later = time.time_ns() + 3600 * 10**9
    for body, want in (
            ({"matchers": "host=a b", "ends_at": later, "comment": "c"}, 400),
            ({"matchers": "host=a  rule=b", "ends_at": later,
              "comment": "c"}, 400),
            ({"matchers": "host=a", "ends_at": 1, "comment": "c"}, 400),
            ({"matchers": "host=a", "ends_at": later}, 400),
            ({"matchers": "host=a", "ends_at": later, "comment": "c",
              "user": "mallory"}, 400),
            ({"matchers": "x" * 600, "ends_at": later, "comment": "c"}, 400),
            ("[]", 400), (None, 400)):
        raw = (body if isinstance(body, str) or body is None
               else json.dumps(body))
        st, doc, _ = api.call("/api/v1/silences", op, method="POST",
                              body=raw.encode() if raw else None)
        e2e.check(st == want and doc["status"] == want, "%r: %r"
                  % (body, doc))
    for path, tok, body, want in (
            ("/api/v1/silences/1/expire", op, b"{}", 400),
            ("/api/v1/silences/1/expire", None, None, 401),
            ("/api/v1/silences/x/expire", op, None, 400),
            ("/api/v1/silences/1/delete", op, None, 404),
            ("/api/v1/silences/1", op, None, 404)):
        st, doc, _ = api.call(path, tok, method="POST", body=body)
        e2e.check(st == want, "%s: %d %r" % (path, st, doc))
    e2e.check(len(ctl_json(env, "silences", "list", "--all")) == 3,
              "a refused silence was recorded")

    # A viewer may not act: the API's 403, exit 1 as a local failure.
    _, out, err = remote(env, api, viewer, "incidents", "resolve", str(iid),
                         expect=1)
    e2e.check(out == "" and err ==
              "tocsinctl: 127.0.0.1: 403 this needs the operator role\n", err)
    # No such incident: the API's 404.
    _, _, err = remote(env, api, oncall, "incidents", "ack", "99999",
                       expect=1)
    e2e.check(err == "tocsinctl: 127.0.0.1: 404 no incident 99999\n", err)

    # Not over the API yet: said so, usage exit status.
    # --user (the token's name is the user) and the commands outside
    # incidents, problems, silences and stats: refused, usage status.
    for args in (("problems", "note", "1", "x", "--user", "mallory"),
                 ("silences", "expire", "1", "--user", "mallory"),
                 ("silences", "add", "--match", "rule=r1", "--duration",
                  "1h", "--comment", "x", "--user", "mallory"),
                 ("incidents", "ack", str(iid), "--user", "mallory"),
                 ("events", "list"), ("replay",), ("tokens", "list")):
        _, out, err = remote(env, api, oncall, *args, expect=2)
        e2e.check(out == "" and (err == "tocsinctl: %s: not available with "
                                 "--url yet\n" % args[0]
                                 or "--user: not with --url" in err),
                  "%r: %s" % (args, err))


if __name__ == "__main__":
    e2e.main([test_ctl_url])
