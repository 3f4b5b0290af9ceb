#!/usr/bin/env python3
"""Which files the agent reads, with the real agent and collector: a
symlink in a tailed directory that leads outside (ln -s /etc/shadow
logs/secret.log) is not shipped and is warned about once; the
Kubernetes layout (containers/*.log -> pods/...) is shipped with
follow_symlinks; a symlink swapped after start to point outside is not
followed; a FIFO is refused without blocking the other files; a /proc
file named explicitly is refused."""

import os
import re
import time

import tocsin_e2e as e2e

SECRET = "root:$6$SECRETHASH:19000:0:99999:7:::"


def start(env, files_yaml):
    """The collector, and an agent whose files: section is files_yaml."""
    env.make_pki()
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [],
                            extra="tail: {poll_interval: 50ms}\n")
    with open(conf) as f:
        text = f.read().replace("files:\n", "")
    conf = env.write("web-01.yaml", text + "files:\n" + files_yaml)
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag


def rules(path, extra=""):
    """One input taking every line (so anything read would be shipped)."""
    return ("  - path: %s\n%s"
            "    rules:\n"
            "      - {name: all, match: '.', severity: error}\n" % (path, extra))


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def messages(env):
    return [e["message"] for e in env.events()]


def wait_message(env, text):
    e2e.wait_for(lambda: text in messages(env), 20, "event %r" % text,
                 interval=0.2)


def no_secret(env):
    leaked = [m for m in messages(env) if "SECRETHASH" in m]
    e2e.check(not leaked, "secret shipped: %r" % leaked[:3])


def warnings_about(ag, name):
    return [l for l in ag.log().splitlines() if name in l and
            re.search(r"not (read|followed)|outside follow_symlinks", l)]


def test_symlink_outside_not_shipped(env):
    secret = env.write("etc/shadow", SECRET + "\n")
    log = env.write("logs/app.log", "ERROR one\n")
    os.symlink(secret, os.path.join(env.dir, "logs/secret.log"))
    col, ag = start(env, rules(os.path.join(env.dir, "logs/*.log")))
    wait_message(env, "ERROR one")
    time.sleep(1)  # twenty polls: the warning must not repeat
    append(secret, SECRET + " again\n")
    append(log, "ERROR two\n")
    wait_message(env, "ERROR two")
    no_secret(env)
    ag.wait_log(r"secret\.log: a symlink to .*, not followed")
    w = warnings_about(ag, "secret.log")
    e2e.check(len(w) == 1, "warned %d times, not once: %r" % (len(w), w))
    _, out, _ = env.run([e2e.AGENT, "status", "-c", ag.argv[-1], "--json"])
    e2e.check('"files_refused":1' in out.replace(" ", ""),
              "status does not count the refusal: %s" % out)


def k8s_layout(env):
    """pods/NS_POD_UID/CONTAINER/0.log, containers/POD_NS_CONTAINER.log
    -> that file (as the kubelet lays them out), and a secret outside."""
    secret = env.write("etc/shadow", SECRET + "\n")
    pod = env.write("pods/default_web-1_0a1b/web/0.log", "ERROR from pod\n")
    os.makedirs(os.path.join(env.dir, "containers"))
    link = os.path.join(env.dir, "containers/web-1_default_web-0a1b.log")
    os.symlink(os.path.relpath(pod, os.path.dirname(link)), link)
    return secret, pod, link


def test_kubernetes_layout_shipped(env):
    secret, pod, link = k8s_layout(env)
    os.symlink(secret, os.path.join(env.dir, "containers/evil.log"))
    extra = "    follow_symlinks: [%s]\n" % os.path.join(env.dir, "pods")
    col, ag = start(env, rules(os.path.join(env.dir, "containers/*.log"),
                               extra))
    wait_message(env, "ERROR from pod")
    append(pod, "ERROR more\n")
    wait_message(env, "ERROR more")
    evs = [e for e in env.events() if e["message"] == "ERROR more"]
    e2e.check(evs[0]["source"] == link, "source %r" % evs[0]["source"])
    no_secret(env)
    ag.wait_log(r"evil\.log: leads to .*shadow, outside follow_symlinks")


def test_symlink_swapped_not_followed(env):
    secret, pod, link = k8s_layout(env)
    extra = "    follow_symlinks: [%s]\n" % os.path.join(env.dir, "pods")
    col, ag = start(env, rules(os.path.join(env.dir, "containers/*.log"),
                               extra))
    wait_message(env, "ERROR from pod")
    # Swapped in one rename, as an attacker would.
    tmp = link + ".tmp"
    os.symlink(secret, tmp)
    os.rename(tmp, link)
    time.sleep(1)
    append(secret, SECRET + " again\n")
    time.sleep(1)
    no_secret(env)
    ag.wait_log(r"web-0a1b\.log: leads to .*shadow, outside follow_symlinks")
    w = warnings_about(ag, "web-0a1b.log")
    e2e.check(len(w) == 1, "warned %d times, not once: %r" % (len(w), w))


def test_fifo_refused_without_blocking(env):
    os.makedirs(os.path.join(env.dir, "logs"))
    os.mkfifo(os.path.join(env.dir, "logs/pipe.log"))
    log = env.write("logs/app.log", "ERROR one\n")
    col, ag = start(env, rules(os.path.join(env.dir, "logs/*.log")))
    wait_message(env, "ERROR one")
    ag.wait_log(r"pipe\.log: a FIFO, not read")
    append(log, "ERROR two\n")  # the agent is not stuck on the FIFO
    wait_message(env, "ERROR two")
    w = warnings_about(ag, "pipe.log")
    e2e.check(len(w) == 1, "warned %d times, not once: %r" % (len(w), w))


def test_proc_named_refused(env):
    log = env.write("logs/app.log", "ERROR one\n")
    col, ag = start(env, rules("/proc/self/status") + rules(log))
    wait_message(env, "ERROR one")
    time.sleep(0.5)
    bad = [m for m in messages(env) if m.startswith(("Name:", "Pid:", "Uid:"))]
    e2e.check(not bad, "/proc/self/status shipped: %r" % bad[:3])
    ag.wait_log(r"/proc/self/status: a file on /proc, not read")


if __name__ == "__main__":
    e2e.main([
        test_symlink_outside_not_shipped,
        test_kubernetes_layout_shipped,
        test_symlink_swapped_not_followed,
        test_fifo_refused_without_blocking,
        test_proc_named_refused,
    ])
