#!/usr/bin/env python3
"""SIGHUP on the collector: a file that does not load, or whose TLS
files do not, is refused and the running configuration stays; a good
one swaps the TLS identity for new sessions while open sessions keep
working on the old one, applies the incident thresholds from the next
step, and names the keys that need a restart. The hint-signing key is
loaded again too."""

import json
import os
import signal
import ssl
import socket

import tocsin_e2e as e2e


def served_cert(env, pki):
    """DER of the certificate the collector presents now."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(os.path.join(env.dir, pki, "web-01.crt"),
                        os.path.join(env.dir, pki, "web-01.key"))
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def test_reload(env):
    env.make_pki(agents=("web-01",))
    env.run([e2e.CTL, "pki", "init", os.path.join(env.dir, "pki2")])
    env.run([e2e.CTL, "pki", "issue-agent", os.path.join(env.dir, "pki2"),
             "web-02"])
    env.run([e2e.CTL, "pki", "issue-agent", os.path.join(env.dir, "pki2"),
             "web-01"])
    good = env.collector_config("incidents: {max_attempts: 100}\n")
    with open(good) as f:
        text = f.read()
    col = env.collector().start()
    col.wait_log("listening on")
    log = env.write("logs/app.log", "")
    code = env.write("check.code", "2\n")
    script = env.write("check.sh", "#!/bin/sh\nexit $(cat %s)\n" % code)
    os.chmod(script, 0o755)
    checks = ("check_defaults: {interval: 1s, timeout: 800ms, resend: 1s}\n"
              "checks:\n"
              "  - {name: app-health, type: exec, command: [/bin/sh, %s]}\n"
              % script)
    conf = env.agent_config("web-01", [(log, [("oom", "OOM", "error")])],
                            extra=checks)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    old_cert = served_cert(env, "pki")

    def oom_events():
        return [e for e in env.events() if e["rule"] == "oom"]

    def crit_results():
        return [e for e in env.events()
                if e["rule"] == "app-health" and e["state"] == 2]

    def incidents():
        return json.loads(env.ctl("incidents", "list", "--json"))

    with open(log, "a") as f:
        f.write("OOM 1\n")
    e2e.wait_for(lambda: len(oom_events()) == 1, 20, "the first event")
    # 100 attempts: three CRITICAL results open nothing.
    e2e.wait_for(lambda: len(crit_results()) >= 3, 30, "3 CRITICAL results")
    e2e.check([i for i in incidents() if i["rule"] == "app-health"] == [],
              "a check incident before max_attempts")

    # A file that does not parse is refused with its place named.
    at = len(col.log())
    env.write("collector.yaml", text + "listen: [\n")
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"collector\.yaml:\d+.*\n.*reload: .* refused; the running "
                 r"configuration stays", after=at)
    # TLS files that do not load are refused too.
    at = len(col.log())
    env.write("collector.yaml",
              text.replace("pki/collector.key", "pki/missing.key"))
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"missing\.key.*\n.*reload: .* refused", after=at)
    e2e.check(col.alive(), "collector died on a refused reload")
    e2e.check(served_cert(env, "pki") == old_cert, "identity changed")
    with open(log, "a") as f:
        f.write("OOM 2\n")
    e2e.wait_for(lambda: len(oom_events()) == 2, 20, "an event after refusal")

    # A good file: new PKI, thresholds, and a key that needs a restart.
    at = len(col.log())
    env.write("collector.yaml",
              text.replace("pki/", "pki2/")
              .replace("max_attempts: 100", "max_attempts: 2")
              + "name: renamed\n")
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"reload: name changed .*takes effect at the next restart",
                 after=at)
    col.wait_log(r"reload: applied", after=at)
    e2e.check(served_cert(env, "pki2") != old_cert, "identity not swapped")
    # The open session keeps its old TLS context and goes on.
    with open(log, "a") as f:
        f.write("OOM 3\n")
    e2e.wait_for(lambda: len(oom_events()) == 3, 20, "an event on the old "
                 "session after reload")
    e2e.check(ag.log().count("connected to") == 1, "the agent reconnected")
    # The new threshold: the check that kept failing opens its incident.
    inc = e2e.wait_for(lambda: [i for i in incidents()
                                if i["rule"] == "app-health"], 20,
                       "the check incident under max_attempts 2")
    e2e.check(len(inc) == 1 and inc[0]["state"] == "open", repr(inc))
    # A new agent of the new PKI connects and delivers.
    log2 = env.write("logs/app2.log", "")
    conf2 = env.write("web-02.yaml", (
        "collector: {address: 127.0.0.1:%d}\n"
        "tls: {ca: pki2/ca.crt, cert: pki2/web-02.crt, key: pki2/web-02.key}\n"
        "state_dir: state/web-02\n"
        "files:\n  - path: %s\n    rules:\n"
        "      - {name: oom, match: 'OOM', severity: error}\n"
        % (env.port, log2)))
    ag2 = env.agent(conf2).start()
    ag2.wait_log("connected to")
    with open(log2, "a") as f:
        f.write("OOM from web-02\n")
    e2e.wait_for(lambda: [e for e in oom_events() if e["host"] == "web-02"],
                 20, "web-02's event")
    ag2.stop()
    ag.stop()


RUNBOOK = """---
id: oom
title: Out of memory
match: {class: [oom-a, oom-b, oom-c]}
---
Look at the biggest process.
"""


def test_reload_hint_key(env):
    """The hint-signing key is loaded again on SIGHUP. Signed with
    another deployment's key, a hint is refused by the agent (bad
    signature) and recorded refused, its slot free; a key file that does
    not load refuses the reload, naming the file, and the old key signs
    on; a good key signs the next hint, which the agent stores and acks
    on the same link, while the refused ones stay refused."""
    env.make_pki(agents=("web-01",))
    other = os.path.join(env.dir, "pki2")
    env.run([e2e.CTL, "pki", "init", other])
    env.write("runbooks/oom.md", RUNBOOK)
    base = env.collector_config("runbooks: {dir: runbooks}\n")
    with open(base) as f:
        text = f.read()
    env.write("collector.yaml",
              text + "hints: {signing_key: pki2/hint-signing.key}\n")
    col = env.collector().start()
    col.wait_log("listening on")
    log = env.write("logs/app.log", "")
    conf = env.agent_config(
        "web-01", [(log, [(r, r.upper(), "error")
                          for r in ("oom-a", "oom-b", "oom-c")])],
        extra="hints: {public_key: pki/hint-signing.pub}\n")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")

    def hints(*args):
        return json.loads(env.ctl("hints", "list", "--json", *args))

    def state(hid):
        return [h["state"] for h in hints() if h["id"] == hid]

    # Signed with pki2's key: the agent refuses it, the collector says why.
    with open(log, "a") as f:
        f.write("OOM-A\n")
    col.wait_log(r"hint 1 refused by web-01: bad signature")
    h = e2e.wait_for(lambda: hints("--state", "refused"), 20,
                     "hint 1 recorded refused")
    e2e.check(h[0]["id"] == 1 and
              h[0]["error"] == "refused by the agent: bad signature", repr(h))

    # A key file that does not load: refused, named; the old key stays.
    env.write("broken.key", "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n"
              "-----END PRIVATE KEY-----\n")
    os.chmod(os.path.join(env.dir, "broken.key"), 0o600)
    at = len(col.log())
    env.write("collector.yaml",
              text + "hints: {signing_key: broken.key}\n")
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"collector\.yaml:\d+: hints\.signing_key: .*broken\.key.*"
                 r"\n.*reload: .* refused; the running configuration stays",
                 after=at)
    e2e.check(col.alive(), "collector died on a broken key")
    with open(log, "a") as f:
        f.write("OOM-B\n")
    col.wait_log(r"hint 2 refused by web-01: bad signature", after=at)

    # The deployment's own key: the next hint is stored and acked.
    at = len(col.log())
    env.write("collector.yaml",
              text + "hints: {signing_key: pki/hint-signing.key}\n")
    col.proc.send_signal(signal.SIGHUP)
    col.wait_log(r"reload: applied .*hint-signing key", after=at)
    with open(log, "a") as f:
        f.write("OOM-C\n")
    e2e.wait_for(lambda: state(3) == ["acked"], 20, "hint 3 acked")
    ag.wait_log(r"hint 3 for incident \d+: Out of memory")
    e2e.check(state(1) == ["refused"] and state(2) == ["refused"],
              repr(hints()))
    e2e.check(ag.log().count("connected to") == 1, "the agent reconnected")
    got = json.loads(env.run([e2e.AGENT, "hints", "--json", "-c", conf])[1])
    e2e.check([g["id"] for g in got] == [3], repr(got))
    ag.stop()
    col.stop()


if __name__ == "__main__":
    e2e.main([test_reload, test_reload_hint_key])
