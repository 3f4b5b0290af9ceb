#!/usr/bin/env python3
"""Runbooks end to end (issue 12 item 1): tocsinctl runbooks list shows
the loaded runbooks and each skipped file with its path:line; runbooks
test on a real incident (labels and captured fields from a real agent's
event) names the runbook that matches, why, the action parameters
filled from the event, and the nearest runbook that does not match and
why not; the collector loads the directory at start and again on
SIGHUP, picking up a new file and skipping a broken one (logged with
path:line) while the others stay; a missing directory fails -n, start
and the reload, and a broken file fails -n."""

import json
import os
import signal

import tocsin_e2e as e2e

CACHE_DOWN = """---
title: Cache unreachable from a web server
match:
  class: [upstream-down, cache-*]
  labels: {service: web}
  severity: [error, critical]
  hosts: ["web-*"]
priority: 10
links: ["https://wiki.example/cache"]
action:
  name: restart-cache
  params: {unit: memcached.service, host: "{field.upstream}", from: "{host}"}
---
1. Check the cache host named in the event.
"""

ANY_UPSTREAM = """---
id: any-upstream
title: Some upstream is down
match: {class: "upstream-*"}
priority: 1
---
Generic steps.
"""

DB_DOWN = """---
title: Database unreachable
match:
  class: [db-*]
  hosts: ["web-*"]
  severity: [error]
---
Check the database.
"""

SPREAD_ONLY = """---
title: Many web servers lose the cache
match:
  class: upstream-down
  problem_rule: [spread]
priority: 50
---
Only for a spread problem.
"""

BROKEN = """---
title: Broken
match:
  class: [x
---
"""


def agent_conf(env, name, log):
    return env.write("%s.yaml" % name, (
        "collector: {address: 127.0.0.1:%d}\n"
        "tls: {ca: pki/ca.crt, cert: pki/%s.crt, key: pki/%s.key}\n"
        "state_dir: state/%s\n"
        "files:\n"
        "  - path: %s\n"
        "    labels: {service: web, env: prod}\n"
        "    rules:\n"
        "      - {name: upstream-down, match: 'cache unreachable "
        "upstream=(?<upstream>\\S+)', severity: error}\n"
        % (env.port, name, name, name, log)))


REF_CACHE = """---
id: ref-cache
title: Web servers name a failing cache
match:
  class: upstream-down
  problem_rule: [reference, topology]
priority: 100
---
The cache named in the event is the root cause: work on it first.
"""


def write_runbooks(env):
    env.write("runbooks/cache-down.md", CACHE_DOWN)
    env.write("runbooks/any.md", ANY_UPSTREAM)
    env.write("runbooks/db-down.md", DB_DOWN)
    env.write("runbooks/spread-only.md", SPREAD_ONLY)
    env.write("runbooks/broken.md", BROKEN)
    env.write("runbooks/README.txt", "not a runbook: ignored")


def test_list_and_test(env):
    env.make_pki(agents=("web-01",))
    write_runbooks(env)
    env.collector_config("runbooks: {dir: runbooks}\n")

    rc, out, err = env.run([e2e.CTL, "-c", env.collector_conf, "runbooks",
                            "list", "--json"])
    got = json.loads(out)
    ids = [r["id"] for r in got["runbooks"]]
    # Priority order, high first.
    e2e.check(ids == ["spread-only", "cache-down", "any-upstream", "db-down"],
              repr(ids))
    cd = got["runbooks"][1]
    e2e.check(cd["action"] == "restart-cache"
              and cd["params"]["host"] == "{field.upstream}"
              and cd["match"]["labels"] == {"service": "web"}
              and cd["match"]["severity"] == ["error", "critical"]
              and cd["file"].endswith("runbooks/cache-down.md")
              and len(cd["hash"]) == 16, repr(cd))
    e2e.check(len(got["skipped"]) == 1
              and got["skipped"][0]["file"].endswith("runbooks/broken.md")
              and "broken.md:5:" in got["skipped"][0]["error"],
              repr(got["skipped"]))
    e2e.check("broken.md:5:" in err, err)

    text = env.ctl("runbooks", "list")
    lines = text.splitlines()
    e2e.check(lines[0].split()[:3] == ["ID", "PRIORITY", "TITLE"], text)
    e2e.check("cache-down" in text and "restart-cache" in text
              and "skipped (not loaded):" in text and "broken.md:5:" in text,
              text)

    col = env.collector().start()
    col.wait_log("listening on")
    col.wait_log(r"runbooks: 4 loaded from \S+, 1 skipped")
    log = env.write("logs/web-01.log", "")
    agent = env.agent(agent_conf(env, "web-01", log)).start()
    agent.wait_log("connected to")
    with open(log, "a") as f:
        f.write("cache unreachable upstream=cache-01:6379\n")

    def incident():
        incs = json.loads(env.ctl("incidents", "list", "--json"))
        return [i for i in incs if i["rule"] == "upstream-down"]

    inc = e2e.wait_for(incident, 30, "the incident")[0]
    t = json.loads(env.ctl("runbooks", "test", str(inc["id"]), "--json"))
    e2e.check(t["incident"] == inc["id"] and t["host"] == "web-01"
              and t["class"] == "upstream-down" and t["severity"] == "error"
              and t["problem_rule"] is None and t["event_found"]
              and t["labels"].get("service") == "web"
              and t["fields"].get("upstream") == "cache-01:6379", repr(t))
    m = t["match"]
    e2e.check(m is not None and m["id"] == "cache-down"
              and m["action"] == "restart-cache", repr(m))
    e2e.check(m["params"]["host"]["value"] == "cache-01:6379"
              and m["params"]["from"]["value"] == "web-01"
              and m["params"]["unit"]["value"] == "memcached.service",
              repr(m["params"]))
    # spread-only holds 1 of 2 (class), db-down 2 of 3 (host, severity):
    # db-down is nearer.
    e2e.check(t["nearest"]["id"] == "db-down"
              and t["nearest"]["why"] == "class upstream-down not in [db-*]",
              repr(t["nearest"]))
    by = {r["id"]: r for r in t["runbooks"]}
    e2e.check(by["spread-only"]["why"]
              == "problem rule none not in [spread]", repr(by))
    e2e.check(by["any-upstream"]["matched"] and by["cache-down"]["matched"],
              repr(by))

    text = env.ctl("runbooks", "test", str(inc["id"]))
    e2e.check("matches: cache-down" in text
              and "host = cache-01:6379" in text
              and "nearest not matching: db-down: class upstream-down not in "
              "[db-*]" in text, text)
    e2e.check("latest event: labels" in text and "service=web" in text, text)

    _, _, err = env.run([e2e.CTL, "-c", env.collector_conf, "runbooks",
                         "test", "99999"], expect=1)
    e2e.check("no incident 99999" in err, err)
    env.run([e2e.CTL, "-c", env.collector_conf, "runbooks", "test"], expect=2)
    agent.stop()


def test_problem_rule(env):
    """The incident's problem rule comes from the store: a web server
    naming the failing cache joins a reference problem, and the runbook
    for that rule outranks the general one."""
    env.make_pki(agents=("web-01", "cache-01"))
    env.write("runbooks/cache-down.md", CACHE_DOWN)
    env.write("runbooks/ref-cache.md", REF_CACHE)
    env.collector_config("runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    logs, agents = {}, {}
    for h in ("web-01", "cache-01"):
        logs[h] = env.write("logs/%s.log" % h, "")
        agents[h] = env.agent(agent_conf(env, h, logs[h])).start()
    for h in agents:
        agents[h].wait_log("connected to")
    # The cache fails first (its own rule: upstream-down on "cache
    # unreachable" would not do; a line naming nobody opens its incident).
    with open(logs["cache-01"], "a") as f:
        f.write("cache unreachable upstream=disk\n")

    def incs(host):
        return [i for i in json.loads(env.ctl("incidents", "list", "--json"))
                if i["host"] == host]

    cache = e2e.wait_for(lambda: incs("cache-01"), 30, "the cache incident")[0]
    with open(logs["web-01"], "a") as f:
        f.write("cache unreachable upstream=cache-01\n")
    web = e2e.wait_for(lambda: [i for i in incs("web-01")
                                if i.get("problem")], 30,
                       "the web incident in a problem")[0]
    t = json.loads(env.ctl("runbooks", "test", str(web["id"]), "--json"))
    e2e.check(t["problem"] == web["problem"]
              and t["problem_rule"] == "reference", repr(t))
    e2e.check(t["match"]["id"] == "ref-cache", repr(t["match"]))
    by = {r["id"]: r for r in t["runbooks"]}
    e2e.check(by["cache-down"]["matched"], repr(by))
    # The cache's incident is in the same problem: ref-cache applies
    # there too; cache-down's class holds, its host does not.
    t = json.loads(env.ctl("runbooks", "test", str(cache["id"]), "--json"))
    e2e.check(t["host"] == "cache-01" and t["problem"] == web["problem"],
              repr(t))
    e2e.check(t["match"]["id"] == "ref-cache"
              and t["nearest"]["id"] == "cache-down"
              and t["nearest"]["why"] == "host cache-01 not in [web-*]",
              repr(t))
    for a in agents.values():
        a.stop()


def test_reload(env):
    env.make_pki(agents=())
    env.write("runbooks/cache-down.md", CACHE_DOWN)
    conf = env.collector_config("runbooks: {dir: runbooks}\n")
    env.run([e2e.COLLECTOR, "-n", "-c", conf])

    col = env.collector().start()
    col.wait_log("listening on")
    col.wait_log(r"runbooks: 1 loaded from \S+, 0 skipped")

    # A new file and a broken one: the new one loads, the broken one is
    # logged with its path and line and skipped, cache-down stays.
    mark = len(col.log())
    env.write("runbooks/db-down.md", DB_DOWN)
    env.write("runbooks/broken.md", BROKEN)
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"runbooks/broken\.md:5: ", after=mark)
    col.wait_log(r"runbooks: 2 loaded from \S+, 1 skipped", after=mark)
    col.wait_log(r"reload: applied .*runbooks", after=mark)
    got = json.loads(env.ctl("runbooks", "list", "--json"))
    e2e.check(sorted(r["id"] for r in got["runbooks"])
              == ["cache-down", "db-down"], repr(got))

    # -n finds what start-up would skip.
    rc, out, err = env.run([e2e.COLLECTOR, "-n", "-c", conf], expect=1)
    e2e.check("broken.md:5:" in err and "1 of 3 files skipped" in err, err)

    # The directory gone: the reload is refused, the collector runs on.
    os.rename(os.path.join(env.dir, "runbooks"),
              os.path.join(env.dir, "runbooks.old"))
    mark = len(col.log())
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"runbooks\.dir \S+/runbooks: no such directory", after=mark)
    col.wait_log(r"reload: \S+ refused; the running configuration stays",
                 after=mark)
    e2e.check(col.alive(), "collector died on a refused reload")
    rc, out, err = env.run([e2e.COLLECTOR, "-n", "-c", conf], expect=1)
    e2e.check("runbooks/: " not in err and "no such directory" in err, err)
    col.stop()
    # And start-up refuses it, before listening.
    bad = env.collector(name="collector-nodir").start()
    bad.proc.wait(timeout=30)
    e2e.check(bad.proc.returncode == 1
              and "no such directory" in bad.log(), bad.log())


if __name__ == "__main__":
    e2e.main([test_list_and_test, test_problem_rule, test_reload])
