#!/usr/bin/env python3
"""tocsinctl replay --config NEW.yaml (issue 11 item 7), with real agents
and a real collector: a live store with reference links off holds two
spread problems of three web hosts each and an unlinked cache incident
they name. Replayed with (a) the same settings: exit 0, "no change";
(b) spread.min_hosts 4: exit 1, both problems removed, their incidents
unlinked; (c) reference on: one candidate problem with the cache takes
the incidents of both, reported as merged, the root cause moves to the
cache; (d) --json parses and its counts match the text; (e) the same
question twice gives byte-identical output; (f) a broken candidate is
refused with its file:line and exit 2; --since limits the report to
what opened recently (by the stored inputs' clock); the live store is
the same file, byte for byte, after all of it."""

import hashlib
import json
import os
import re

import tocsin_e2e as e2e

HOSTS = ("web-01", "web-02", "web-03", "cache-01")
WEBS = HOSTS[:3]
LIVE = "correlation: {reference: {enabled: false}}\n"


def incidents(env):
    return json.loads(env.ctl("incidents", "list", "--json"))


def problems(env):
    return json.loads(env.ctl("problems", "list", "--json"))


def append(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")


def sha(path):
    """The store's bytes: the file and its write-ahead log, if any (a
    write would land in the log first)."""
    h = hashlib.sha256()
    for p in (path, path + "-wal"):
        if os.path.exists(p):
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def build_live(env):
    """The live store; returns ({rule: problem}, the cache incident)."""
    env.make_pki(agents=HOSTS)
    env.collector_config(LIVE)
    col = env.collector().start()
    col.wait_log("listening on")
    logs, agents = {}, []
    for h in HOSTS:
        logs[h] = env.write("logs/%s.log" % h, "")
        rules = [("upstream-down",
                  r"cache unreachable upstream=(?<upstream>\S+)", "error"),
                 ("upstream-slow", r"cache slow upstream=(?<upstream>\S+)",
                  "warning"),
                 ("cache-oom", "OOM", "critical")]
        agents.append(env.agent(env.agent_config(h, [(logs[h], rules)]))
                      .start())
    for a in agents:
        a.wait_log("connected to")
    append(logs["cache-01"], "OOM killed redis")
    e2e.wait_for(lambda: [i for i in incidents(env)
                          if i["rule"] == "cache-oom"], 30, "cache incident")
    for h in WEBS:
        append(logs[h], "cache unreachable upstream=cache-01:6379")
        append(logs[h], "cache slow upstream=cache-01")

    def two():
        ps = problems(env)
        return len(ps) == 2 and all(len(p["hosts"]) == 3 for p in ps) and ps

    e2e.wait_for(two, 30, "two spread problems: %r" % problems(env))
    ps = problems(env)
    inc = incidents(env)
    by = {}
    for p in ps:
        rules = {i["rule"] for i in inc if i["id"] in p["incidents"]}
        e2e.check(p["rule"] == "spread" and len(rules) == 1, repr(ps))
        by[rules.pop()] = p
    cache = [i for i in inc if i["rule"] == "cache-oom"][0]
    e2e.check(cache["problem"] is None, repr(cache))
    # Stop everything: from here the store must not change at all.
    for d in reversed(env.daemons):
        d.stop()
    return by, cache


def replay(env, conf, *args, expect):
    return env.run([e2e.CTL, "-c", env.collector_conf, "replay", "--config",
                    conf] + list(args), expect=expect)


def counts(text):
    """The two summary lines of the text output as {name: n}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(problems|incidents): (.*)$", line)
        if not m:
            continue
        for part in m.group(2).split(", "):
            n, name = part.split(" ", 1)
            out[m.group(1) + ":" + name] = int(n)
    return out


def test_replay_config(env):
    by, cache = build_live(env)
    down, slow = by["upstream-down"], by["upstream-slow"]
    db = os.path.join(env.dir, "state/collector.db")
    before = sha(db)
    base = open(env.collector_conf).read()

    # (a) The same settings: nothing would change.
    same = env.write("same.yaml", base)
    _, out, _ = replay(env, same, expect=0)
    e2e.check(out.rstrip().endswith("no change"), out)
    e2e.check("2 unchanged" in out and "0 removed" in out, out)
    rep = json.loads(replay(env, same, "--json", expect=0)[1])
    e2e.check(rep["changed"] is False and rep["changes"] == 0
              and [p["change"] for p in rep["problems"]]
              == ["unchanged", "unchanged"], repr(rep))

    # (b) min_hosts 4: both spread problems are gone, their incidents
    # unlinked (and no longer inhibited).
    four = env.write("four.yaml", base.replace(
        LIVE, "correlation: {reference: {enabled: false},"
              " spread: {min_hosts: 4}}\n"))
    _, out, _ = replay(env, four, expect=1)
    e2e.check(re.search(r"^removed +%d +- " % down["id"], out, re.M)
              and re.search(r"^removed +%d +- " % slow["id"], out, re.M), out)
    rep = json.loads(replay(env, four, "--json", expect=1)[1])
    removed = [p for p in rep["problems"] if p["change"] == "removed"]
    e2e.check(sorted(p["live"][0] for p in removed)
              == sorted([down["id"], slow["id"]]), repr(rep))
    e2e.check([p["incidents"] for p in removed if p["live"] == [down["id"]]]
              == [sorted(down["incidents"])], repr(removed))
    unlinked = sorted(i["incident"] for i in rep["incidents"]
                      if i["change"] == "unlinked")
    e2e.check(unlinked == sorted(down["incidents"] + slow["incidents"]),
              repr(rep["incidents"]))
    e2e.check(all(i["candidate_problem"] is None for i in rep["incidents"]
                  if i["change"] == "unlinked"), repr(rep))
    e2e.check(rep["counts"]["problems"]["removed"] == 2
              and rep["counts"]["problems"]["unchanged"] == 0, repr(rep))

    # (c) Reference on: every web incident names cache-01, whose
    # incident opened first, so one candidate problem holds both live
    # problems' incidents and the cache's: merged, rooted at the cache.
    merge = env.write("merge.yaml", base.replace(LIVE, ""))
    _, text, _ = replay(env, merge, expect=1)
    e2e.check(re.search(r"^merged +%d,%d +1 " % tuple(sorted(
        [down["id"], slow["id"]])), text, re.M), text)
    e2e.check("cache-01" in text, text)
    _, js, _ = replay(env, merge, "--json", expect=1)
    rep = json.loads(js)
    merged = [p for p in rep["problems"] if p["change"] == "merged"]
    e2e.check(len(merged) == 1 and merged[0]["live"]
              == sorted([down["id"], slow["id"]]), repr(rep))
    e2e.check(sorted(merged[0]["incidents"]) == sorted(
        down["incidents"] + slow["incidents"] + [cache["id"]]), repr(merged))
    e2e.check(merged[0]["candidate_root"] == "cache-01", repr(merged))
    linked = [i for i in rep["incidents"] if i["change"] == "linked"]
    e2e.check([i["incident"] for i in linked] == [cache["id"]], repr(linked))

    # (d) The JSON's counts are the text's.
    c = counts(text)
    names = {"opened": "opened", "removed": "removed", "merged": "merged",
             "split": "split", "changed": "changed",
             "root_cause": "root cause changed", "unchanged": "unchanged"}
    for k, v in rep["counts"]["problems"].items():
        e2e.check(c["problems:" + names[k]] == v, "%s: %r %r" % (k, c, rep))
    inames = {"moved": "moved", "unlinked": "unlinked", "linked": "linked",
              "inhibited": "inhibited changed", "only_live": "only live",
              "only_candidate": "only candidate"}
    for k, v in rep["counts"]["incidents"].items():
        e2e.check(c["incidents:" + inames[k]] == v, "%s: %r %r" % (k, c, rep))
    e2e.check(rep["changes"] == len(rep["problems"]) + len(rep["incidents"])
              and re.search(r"^%d changes$" % rep["changes"], text, re.M),
              text)

    # (e) Twice: byte for byte.
    e2e.check(replay(env, merge, expect=1)[1] == text, "text differs")
    e2e.check(replay(env, merge, "--json", expect=1)[1] == js, "json differs")

    # --since counts back from the last stored step: everything here
    # opened within the last hour of it, nothing in a 0s window.
    _, out, _ = replay(env, four, "--since", "1h", expect=1)
    e2e.check(counts(out)["problems:removed"] == 2, out)
    _, out, _ = replay(env, four, "--since", "0s", expect=0)
    e2e.check(out.rstrip().endswith("no change")
              and "reporting what opened since" in out, out)
    replay(env, four, "--since", "soon", expect=2)

    # (f) A broken candidate is refused with the loader's file:line
    # before anything runs.
    bad = env.write("bad.yaml", base.replace(
        LIVE, "correlation:\n  spread: {min_hosts: lots}\n"))
    _, out, err = replay(env, bad, expect=2)
    e2e.check(re.search(r"bad\.yaml:\d+:", err) and out == "", out + err)
    _, out, err = replay(env, os.path.join(env.dir, "missing.yaml"), expect=2)
    e2e.check("missing.yaml" in err and out == "", out + err)

    # Nothing above wrote to the live store.
    e2e.check(sha(db) == before, "the live store changed")
    e2e.check(json.loads(env.ctl("replay", "--json"))["identical"], "replay")


if __name__ == "__main__":
    e2e.main([test_replay_config])
