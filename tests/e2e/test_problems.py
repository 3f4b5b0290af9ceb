#!/usr/bin/env python3
"""Problems end to end with real agents and a real collector (issue 11):
the same error class on three hosts within the window is one spread
problem; errors on hosts that name another agent's host make that host
the top root-cause candidate and inhibit the symptoms, not the root;
two unrelated failures at the same time stay apart; the listings have
their keys; tocsinctl replay rebuilds the problems identically and names
a tampered problem row; a problem action is recorded and applied;
control characters from log data are escaped in text output."""

import json
import os
import re
import signal
import sqlite3
import time

import tocsin_e2e as e2e

HOSTS = ("web-01", "web-02", "web-03", "cache-01")


def problems(env, *args):
    return json.loads(env.ctl("problems", "list", "--json", *args))


def incidents(env):
    return json.loads(env.ctl("incidents", "list", "--json"))


def start(env, extra=""):
    env.make_pki(agents=HOSTS)
    env.collector_config(extra)
    col = env.collector().start()
    col.wait_log("listening on")
    logs, agents = {}, {}
    for h in HOSTS:
        logs[h] = env.write("logs/%s.log" % h, "")
        rules = [("upstream-down", r"cache unreachable upstream=(?<upstream>\S+)",
                  "error"),
                 ("disk-full", "disk full", "error"),
                 ("segfault", "segfault", "error"),
                 ("tls-expired", "certificate expired", "warning"),
                 ("cache-oom", "OOM", "critical")]
        conf = env.agent_config(h, [(logs[h], rules)])
        agents[h] = env.agent(conf).start()
    for h in HOSTS:
        agents[h].wait_log("connected to")
    return col, logs


def append(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")


def test_problems(env):
    col, logs = start(env)
    # The cache fails first; its agent's events make cache-01 known.
    append(logs["cache-01"], "OOM killed redis")
    e2e.wait_for(lambda: [i for i in incidents(env) if i["rule"] == "cache-oom"],
                 30, "the cache incident")

    # Three web servers name the cache (one with control characters in
    # the value: it still names cache-01 and must come out escaped).
    append(logs["web-01"], "cache unreachable upstream=cache-01:6379")
    append(logs["web-02"], "cache unreachable upstream=cache-01")
    append(logs["web-03"],
           "cache unreachable upstream=cache-01.\x1b]0;pwned\x07example.net")
    # Two unrelated failures at the same time on two hosts.
    append(logs["web-01"], "disk full on /var")
    append(logs["web-02"], "segfault in worker")

    def webs():
        return [i for i in incidents(env) if i["rule"] == "upstream-down"]

    e2e.wait_for(lambda: len(webs()) == 3, 30, "three web incidents")

    def ref_problem():
        ps = [p for p in problems(env)
              if set(i["id"] for i in webs()) <= set(p["incidents"])]
        return ps

    ps = e2e.wait_for(ref_problem, 30, "one problem with the web incidents")
    e2e.check(len(ps) == 1, repr(ps))
    p = ps[0]
    for k in ("id", "state", "title", "rule", "incidents", "hosts",
              "root_cause", "opened_at", "resolved_at"):
        e2e.check(k in p, "key %s missing: %r" % (k, p))
    e2e.check(p["state"] == "open" and p["resolved_at"] is None, repr(p))
    oom = [i for i in incidents(env) if i["rule"] == "cache-oom"][0]
    e2e.wait_for(lambda: [q for q in problems(env) if q["id"] == p["id"]
                          and oom["id"] in q["incidents"]
                          and q["root_cause"] == "cache-01"], 30,
                 "the cache as the root cause: %r" % problems(env))
    show = json.loads(env.ctl("problems", "show", str(p["id"]), "--json"))
    c = show["candidates"]
    e2e.check(c and c[0]["host"] == "cache-01" and c[0]["incident"] == oom["id"]
              and "named by" in c[0]["evidence"], repr(c))
    e2e.check(all(k in c[0] for k in ("host", "incident", "score", "evidence")),
              repr(c[0]))
    e2e.check(show["links"] and all(k in show["links"][0]
                                    for k in ("incident", "rule", "fields")),
              repr(show["links"]))
    e2e.check("rca" in show and "timeline" in show and show["timeline"],
              repr(show))

    # Marks: symptoms inhibited, the root cause not; the unrelated
    # failures have no problem.
    inc = {i["id"]: i for i in incidents(env)}
    e2e.check(inc[oom["id"]]["problem"] == p["id"]
              and not inc[oom["id"]]["inhibited"], repr(inc[oom["id"]]))
    for w in webs():
        e2e.check(inc[w["id"]]["problem"] == p["id"] and inc[w["id"]]["inhibited"],
                  repr(inc[w["id"]]))
    one = json.loads(env.ctl("incidents", "show", str(webs()[0]["id"]),
                             "--json"))
    e2e.check(one["problem"] == p["id"] and one["inhibited"] is True, repr(one))
    for rule in ("disk-full", "segfault"):
        one = [i for i in inc.values() if i["rule"] == rule]
        e2e.check(len(one) == 1 and one[0]["problem"] is None
                  and not one[0]["inhibited"], repr(one))

    check_explain(env, p, oom, webs(),
                  [i for i in inc.values() if i["rule"] == "disk-full"][0])

    # Text output escapes what log data put in links and evidence.
    text = env.ctl("problems", "show", str(p["id"]))
    e2e.check("\x1b" not in text and "\x07" not in text, repr(text))
    e2e.check("cache-01" in text, text)
    lst = env.ctl("problems", "list")
    e2e.check("\x1b" not in lst and re.search(r"^ *%d +open" % p["id"], lst, re.M),
              lst)

    # A problem action through the store, like the incident actions.
    out = env.ctl("problems", "investigate", str(p["id"]), "--user", "alice")
    e2e.check("investigate by alice" in out, out)
    e2e.check([q for q in problems(env, "--state", "investigating")
               if q["id"] == p["id"]], repr(problems(env)))
    env.run([e2e.CTL, "-c", env.collector_conf, "problems", "rca",
             str(p["id"]), "why9", "x"], expect=1)
    # Text is a bound parameter, never SQL: it comes back as it went in.
    sqlish = "x'); DROP TABLE problems; --"
    out = env.ctl("problems", "note", str(p["id"]), sqlish, "--user", sqlish)
    e2e.check("note by" in out, out)
    tl = json.loads(env.ctl("problems", "show", str(p["id"]), "--json"))
    e2e.check(any(n["what"] == "note" and n["detail"] == sqlish
                  and n["who"] == "user:" + sqlish for n in tl["timeline"]),
              repr(tl["timeline"]))

    # A post-incident review of the root incident, recorded on the
    # problem it handed over to; an incident of no problem is refused.
    out = env.ctl("problems", "review", str(p["id"]), str(oom["id"]),
                  "impact", "\x1b[31m12 min of 502s", "--user", "bob")
    e2e.check("review by bob" in out, out)
    env.ctl("problems", "review", str(p["id"]), str(oom["id"]), "action",
            "set maxmemory")
    other = [i for i in inc.values() if i["rule"] == "disk-full"][0]
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "problems",
                           "review", str(p["id"]), str(other["id"]),
                           "summary", "x"], expect=1)
    e2e.check("refused" in err, out + err)
    env.run([e2e.CTL, "-c", env.collector_conf, "problems", "review",
             str(p["id"]), str(oom["id"]), "blame", "x"], expect=2)
    rv = json.loads(env.ctl("problems", "show", str(p["id"]), "--json"))
    e2e.check(rv["reviews"] == [
        {"incident": oom["id"], "field": "impact",
         "text": "\x1b[31m12 min of 502s"},
        {"incident": oom["id"], "field": "action", "text": "set maxmemory"}],
        repr(rv["reviews"]))
    text = env.ctl("problems", "show", str(p["id"]))
    e2e.check(re.search(r"^review %d +impact: \\x1b\[31m12 min" % oom["id"],
                        text, re.M) and "\x1b" not in text, text)

    # Replay rebuilds the same problems; a tampered problem row is named.
    rep = json.loads(env.ctl("replay", "--json"))
    e2e.check(rep["identical"] and rep["problems"] >= 1, repr(rep))
    db = sqlite3.connect(os.path.join(env.dir, "state/collector.db"),
                         timeout=10)
    with db:
        db.execute("UPDATE problems SET title = 'tampered' WHERE id = ?",
                   (p["id"],))
    db.close()
    _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "replay"],
                          expect=1)
    e2e.check(re.search(r"^problem %d: title: live tampered, replay " % p["id"],
                        out, re.M), out + err)


def check_explain(env, p, oom, webs, disk):
    """tocsinctl explain: a linked incident gives its rule, fields and
    role; an unrelated incident of the same minute gives each rule's
    verdict and the nearest; a problem gives its opening, links and
    every candidate's score as terms; unknown ids are errors."""
    pid = str(p["id"])
    x = json.loads(env.ctl("explain", "incident", str(webs[0]["id"]),
                           "--json"))
    e2e.check(x["problem"] == p["id"] and x["link"]["rule"] == "reference"
              and "cache-01" in x["link"]["fields"]
              and x["role"] == "symptom" and x["inhibited"] is True
              and "cache-01" in x["role_why"] and x["rules"] == [], repr(x))
    x = json.loads(env.ctl("explain", "incident", str(oom["id"]), "--json"))
    e2e.check(x["role"] == "root_cause" and "ranks first" in x["role_why"],
              repr(x))
    text = env.ctl("explain", "incident", str(webs[0]["id"]))
    e2e.check(re.search(r"^linked by +reference$", text, re.M)
              and re.search(r"^role +inhibited symptom of the root cache-01",
                            text, re.M), text)
    # web-03's value holds control characters: escaped.
    text = env.ctl("explain", "incident", str(webs[2]["id"]))
    e2e.check("\x1b" not in text and "\x07" not in text, repr(text))

    x = json.loads(env.ctl("explain", "incident", str(disk["id"]), "--json"))
    rules = {r["rule"]: r for r in x["rules"]}
    e2e.check(x["problem"] is None and x["link"] is None
              and list(rules) == ["spread", "reference", "topology", "trend",
                                  "major"], repr(x))
    e2e.check(not any(r["matches"] for r in x["rules"]), repr(x))
    e2e.check(rules["spread"]["why"] == "class `disk-full` was seen on 1 host"
              " within 10m (web-01); min_hosts is 3"
              and rules["spread"]["seen"] == 1 and rules["spread"]["need"] == 3,
              repr(rules["spread"]))
    e2e.check(rules["reference"]["why"].startswith(
        "no captured field names a known host"), repr(rules["reference"]))
    e2e.check(rules["topology"]["why"] == "no depends_on rules are configured",
              repr(rules["topology"]))
    e2e.check(rules["trend"]["why"] == "1 incident of class `disk-full` "
              "opened in 7d; count is 5", repr(rules["trend"]))
    e2e.check("only P1-P2 open a problem on resolve" in rules["major"]["why"],
              repr(rules["major"]))
    e2e.check(x["nearest"] == "spread", repr(x))
    text = env.ctl("explain", "incident", str(disk["id"]))
    e2e.check(re.search(r"^  spread +no 1/3  class `disk-full` was seen", text,
                        re.M)
              and re.search(r"^nearest +spread \(1 of 3\)$", text, re.M), text)

    x = json.loads(env.ctl("explain", "problem", pid, "--json"))
    e2e.check(x["problem"] == p["id"] and x["rule"] == "reference"
              and x["opened_with"] and x["engine_holds"] is True, repr(x))
    e2e.check(len([l for l in x["links"] if l["what"] == "linked"]) == 4
              and all(l["rule"] == "reference" for l in x["links"]), repr(x))
    c = x["candidates"]
    e2e.check(c[0]["host"] == "cache-01" and c[0]["incident"] == oom["id"],
              repr(c))
    for cand in c:
        e2e.check(sum(t["points"] for t in cand["terms"]) == cand["score"],
                  repr(cand))
    e2e.check(any(t["what"].startswith("named by 3 other hosts'")
                  and t["points"] == 75 for t in c[0]["terms"]), repr(c[0]))
    e2e.check("still active" in x["state_why"] and x["resolves_at"] is None,
              repr(x))
    roles = {i["incident"]: i["role"] for i in x["incidents"]}
    e2e.check(roles.get(oom["id"]) == "root_cause"
              and all(roles.get(w["id"]) == "symptom" for w in webs),
              repr(x["incidents"]))
    text = env.ctl("explain", "problem", pid)
    e2e.check(re.search(r"^ +\+75 +named by 3 other hosts' events", text, re.M)
              and "ranking" in text and "\x1b" not in text, text)

    # Unknown ids: a clear error, exit 1; a bad form: usage, exit 2.
    for what in ("incident", "problem"):
        _, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "explain",
                               what, "99999"], expect=1)
        e2e.check(out == "" and "no %s 99999" % what in err, out + err)
    env.run([e2e.CTL, "-c", env.collector_conf, "explain", "host", "1"],
            expect=2)
    env.run([e2e.CTL, "-c", env.collector_conf, "explain", "incident", "x"],
            expect=2)


def test_spread(env):
    col, logs = start(env)
    for h in ("web-01", "web-02", "web-03"):
        append(logs[h], "certificate expired for api")
    ps = e2e.wait_for(lambda: [p for p in problems(env) if p["rule"] == "spread"],
                      30, "a spread problem")
    e2e.check(len(ps) == 1 and len(ps[0]["incidents"]) == 3
              and ps[0]["hosts"] == ["web-01", "web-02", "web-03"], repr(ps))
    e2e.check(len(problems(env)) == 1, repr(problems(env)))
    # explain: the spread problem's symptoms share the root's class.
    x = json.loads(env.ctl("explain", "problem", str(ps[0]["id"]), "--json"))
    e2e.check(x["rule"] == "spread" and len(x["opened_with"]) == 3
              and sorted(i["role"] for i in x["incidents"])
              == ["root_cause", "symptom", "symptom"]
              and all("same class `tls-expired`" in i["why"]
                      for i in x["incidents"] if i["role"] == "symptom"),
              repr(x))
    # A field that names a host no agent has: said so, from its events.
    append(logs["cache-01"], "cache unreachable upstream=db-9:5432")
    inc = e2e.wait_for(lambda: [i for i in incidents(env)
                                if i["rule"] == "upstream-down"], 30,
                       "the cache's incident")[0]
    x = json.loads(env.ctl("explain", "incident", str(inc["id"]), "--json"))
    ref = [r for r in x["rules"] if r["rule"] == "reference"][0]
    e2e.check(ref["seen"] == 0 and "field `upstream=db-9:5432` names `db-9`,"
              " which is not a known host" in ref["why"], repr(ref))
    e2e.check(json.loads(env.ctl("replay", "--json"))["identical"], "replay")


def test_reload(env):
    """The correlation rules are reloaded on SIGHUP like the incident
    thresholds: with spread off three hosts make no problem; once it is
    back on, the fourth host's incident of the class makes one with
    all four (they are within the window)."""
    off = "correlation: {spread: {enabled: false}}\n"
    col, logs = start(env, off)
    for h in ("web-01", "web-02", "web-03"):
        append(logs[h], "certificate expired for api")
    e2e.wait_for(lambda: len([i for i in incidents(env)
                              if i["rule"] == "tls-expired"]) == 3, 30,
                 "three incidents")
    time.sleep(1)
    e2e.check(problems(env) == [], repr(problems(env)))
    # Spread back on, with lists (their strings are freed by the next
    # reload: the engine runner keeps its own copy). Twice.
    on = ("correlation:\n"
          "  reference: {fields: [upstream]}\n"
          "  topology: {depends_on: [{from: \"web-*\", to: db-01}]}\n")
    for _ in range(2):
        at = len(col.log())
        env.collector_config(on)
        col.proc.send_signal(signal.SIGHUP)
        col.wait_log(r"reload: applied", after=at)
    append(logs["cache-01"], "certificate expired for api")
    ps = e2e.wait_for(lambda: [p for p in problems(env) if p["rule"] == "spread"],
                      30, "a spread problem after the reload")
    e2e.check(len(ps) == 1 and len(ps[0]["hosts"]) == 4, repr(ps))
    # Replay runs today's rules over the whole history: with spread on
    # from the start the problem would have opened at the third host.
    _, out, _ = env.run([e2e.CTL, "-c", env.collector_conf, "replay",
                         "--json"], expect=1)
    rep = json.loads(out)
    e2e.check(any(d["table"] == "problems" and d["column"] == "title"
                  and d["replay"] == "tls-expired on 3 hosts"
                  for d in rep["differences"]), repr(rep))


if __name__ == "__main__":
    e2e.main([test_problems, test_spread, test_reload])
