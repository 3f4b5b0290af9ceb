#!/usr/bin/env python3
"""Hint dispatch end to end (issue 12 item 2): real collector, real
agents, real TLS; pki init makes the hint-signing pair (the collector
finds the private key beside tls.key, the agents name the public key).

- a runbook matching an incident: the hint is decided in the engine
  step, signed, sent; the agent stores and acks it (tocsin-agent hints
  --json shows it) and tocsinctl hints list shows it acked;
- a reference problem whose root host's agent is stopped: its hint is
  pending; once that agent starts it is delivered and acked;
- a collector restart decides no hint again (dedupe) and sends again
  what was not acked;
- tocsinctl replay rebuilds the same hints (identical);
- a hint the agent refuses is recorded refused with the agent's reason
  (its slot in flight is free at once) and goes again when the agent
  comes back;
- without a signing key hints are decided and stored, not sent."""

import json
import os

import tocsin_e2e as e2e

UPSTREAM = """---
id: upstream
title: Upstream unreachable
match: {class: [upstream-down]}
---
1. Check the upstream named in the event.
"""

REF = """---
id: ref
title: A host named by others is failing
match: {class: [upstream-down], problem_rule: [reference]}
priority: 100
---
The named host is the root cause: work on it first.
"""


def agent_conf(env, name, log):
    return env.write("%s.yaml" % name, (
        "collector: {address: 127.0.0.1:%d}\n"
        "tls: {ca: pki/ca.crt, cert: pki/%s.crt, key: pki/%s.key}\n"
        "state_dir: state/%s\n"
        "hints: {public_key: pki/hint-signing.pub}\n"
        "files:\n"
        "  - path: %s\n"
        "    rules:\n"
        "      - {name: upstream-down, match: 'cache unreachable "
        "upstream=(?<upstream>\\S+)', severity: error}\n"
        % (env.port, name, name, name, log)))


def agent_hints(env, conf):
    _, out, _ = env.run([e2e.AGENT, "hints", "--json", "-c", conf])
    return json.loads(out)


def ctl_hints(env, *args):
    return json.loads(env.ctl("hints", "list", "--json", *args))


def test_dispatch(env):
    env.make_pki(agents=("web-01", "cache-01"))
    env.write("runbooks/upstream.md", UPSTREAM)
    env.write("runbooks/ref.md", REF)
    env.collector_config("runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    logs, confs, agents = {}, {}, {}
    for h in ("web-01", "cache-01"):
        logs[h] = env.write("logs/%s.log" % h, "")
        confs[h] = agent_conf(env, h, logs[h])
        agents[h] = env.agent(confs[h]).start()
    for h in agents:
        agents[h].wait_log("connected to")

    # 1. An incident on web-01 naming nobody known: the runbook's hint
    # reaches web-01, which stores and acks it.
    with open(logs["web-01"], "a") as f:
        f.write("cache unreachable upstream=nowhere\n")
    got = e2e.wait_for(lambda: agent_hints(env, confs["web-01"]), 30,
                       "the hint on web-01")
    e2e.check(len(got) == 1 and got[0]["source"] == "runbook:upstream"
              and got[0]["title"] == "Upstream unreachable", repr(got))
    first = got[0]["id"]
    acked = e2e.wait_for(lambda: [h for h in ctl_hints(env, "--state",
                                                      "acked")
                                  if h["id"] == first], 30,
                         "hint %d acked" % first)[0]
    e2e.check(acked["agent"] == "web-01" and acked["attempts"] == 1
              and acked["acked_at"] > 0 and acked["incident"] > 0, repr(acked))
    incs = json.loads(env.ctl("incidents", "show", str(acked["incident"]),
                              "--json"))
    e2e.check("hint %d for web-01: Upstream unreachable" % first
              in json.dumps(incs), "timeline note missing")

    # 2. cache-01 fails too (its own incident and hint), then stops;
    # web-01 names it: a reference problem of both incidents, with
    # cache-01 as its root. Its hint for cache-01 waits until cache-01
    # is back.
    with open(logs["cache-01"], "a") as f:
        f.write("cache unreachable upstream=disk\n")
    e2e.wait_for(lambda: [h for h in ctl_hints(env, "--agent", "cache-01",
                                               "--state", "acked")], 30,
                 "cache-01's own hint acked")
    agents["cache-01"].stop()
    with open(logs["web-01"], "a") as f:
        f.write("cache unreachable upstream=cache-01:6379\n")

    def pending_for_cache():
        return [h for h in ctl_hints(env, "--agent", "cache-01")
                if h["source"] == "runbook:ref"]

    p = e2e.wait_for(pending_for_cache, 30, "a hint for cache-01")[0]
    e2e.check(p["problem"] > 0 and p["sent_at"] == 0 and p["acked_at"] == 0,
              repr(p))
    e2e.check([h["id"] for h in ctl_hints(env, "--state", "pending")]
              == [p["id"]], repr(ctl_hints(env)))
    before = [(h["id"], h["agent"], h["source"], h["problem"])
              for h in ctl_hints(env)]

    # 3. The collector restarts meanwhile: nothing is decided again
    # (the dedupe key), and the pending hint goes out once cache-01 is
    # back, from the new process.
    col.stop()
    mark = len(col.log())
    col.start()
    col.wait_log("listening on", after=mark)
    agents["web-01"].wait_log("connected to", after=0)
    agents["cache-01"].start()
    e2e.wait_for(lambda: [h for h in agent_hints(env, confs["cache-01"])
                          if h["id"] == p["id"]], 30,
                 "the hint on cache-01 after it reconnected")
    e2e.wait_for(lambda: all(h["state"] == "acked" for h in ctl_hints(env)),
                 30, "every hint acked")
    after = ctl_hints(env)
    e2e.check([(h["id"], h["agent"], h["source"], h["problem"])
               for h in after] == before, "%r\n%r" % (before, after))
    # Each agent stored each of its hints once.
    for name in ("web-01", "cache-01"):
        mine = sorted(h["id"] for h in after if h["agent"] == name)
        e2e.check(sorted(h["id"] for h in agent_hints(env, confs[name]))
                  == mine, name)

    # 4. Replay decides the same hints.
    rep = json.loads(env.ctl("replay", "--json"))
    e2e.check(rep["identical"] and rep["hints"] == len(after), repr(rep))
    for a in agents.values():
        a.stop()
    col.stop()


def test_no_key(env):
    """Without a signing key hints are decided and stored, not sent."""
    env.make_pki(agents=("web-01",))
    env.write("runbooks/upstream.md", UPSTREAM)
    # No key file: the default is only used when it exists.
    os.rename(os.path.join(env.pki, "hint-signing.key"),
              os.path.join(env.pki, "hint-signing.key.away"))
    env.collector_config("runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    col.wait_log("no hints.signing_key: hints are decided and stored, "
                 "not sent")
    log = env.write("logs/web-01.log", "")
    conf = agent_conf(env, "web-01", log)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    with open(log, "a") as f:
        f.write("cache unreachable upstream=nowhere\n")
    h = e2e.wait_for(lambda: ctl_hints(env), 30, "the hint decided")
    e2e.check(len(h) == 1 and h[0]["state"] == "pending", repr(h))
    e2e.check(agent_hints(env, conf) == [], "a hint reached the agent")
    ag.stop()
    col.stop()


def test_resend_until_acked(env):
    """An agent without hints.public_key refuses the hint and says so:
    the collector records it refused with the reason (tocsinctl hints
    list); restarted with the key, the agent gets it again and acks it:
    attempts 2."""
    env.make_pki(agents=("web-01",))
    env.write("runbooks/upstream.md", UPSTREAM)
    env.collector_config("runbooks: {dir: runbooks}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    log = env.write("logs/web-01.log", "")
    conf = agent_conf(env, "web-01", log)
    with open(conf) as f:
        keyless = f.read().replace(
            "hints: {public_key: pki/hint-signing.pub}\n", "")
    env.write("web-01.yaml", keyless)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    with open(log, "a") as f:
        f.write("cache unreachable upstream=nowhere\n")
    ag.wait_log(r"hint 1 refused: no hints.public_key")
    col.wait_log(r"hint 1 refused by web-01: no hints.public_key")
    h = e2e.wait_for(lambda: ctl_hints(env, "--state", "refused"), 30,
                     "the hint recorded refused")
    e2e.check(h[0]["attempts"] == 1 and h[0]["acked_at"] == 0 and
              h[0]["error"] == "refused by the agent: no hints.public_key",
              repr(h))
    e2e.check(ctl_hints(env, "--state", "sent") == [], "refused is sent")
    out = env.ctl("hints", "list")
    e2e.check("refused by the agent: no hints.public_key" in out and
              " refused " in out, out)
    ag.stop()
    agent_conf(env, "web-01", log)  # with the key again
    ag.start()
    e2e.wait_for(lambda: ctl_hints(env, "--state", "acked"), 30,
                 "the hint acked after the agent came back")
    h = ctl_hints(env)
    e2e.check(len(h) == 1 and h[0]["attempts"] == 2, repr(h))
    got = agent_hints(env, conf)
    e2e.check(len(got) == 1 and got[0]["id"] == 1, repr(got))
    ag.stop()
    col.stop()


if __name__ == "__main__":
    e2e.main([test_dispatch, test_no_key, test_resend_until_acked])
