#!/usr/bin/env python3
"""A local user on the agent's or the collector's host reads nothing the
daemons keep: every file they create is 0600, their state directories
0700 (even when pre-created 0755, as systemd's StateDirectory= does),
files left wider by an older version are tightened, a state directory
owned by another user is refused, and a private key that group or others
may read is refused at start and by -n, with its mode in the error."""

import os
import re
import stat

import tocsin_e2e as e2e

NOBODY = 65534


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def mkdir_mode(path, mode):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)


def wait_count(env, n, timeout=30):
    return e2e.wait_for(lambda: len(env.events()) >= n and env.events(),
                        timeout, "%d events" % n, interval=0.2)


def modes(top):
    """{path: mode} for top and everything under it (lstat: no links)."""
    out = {top: stat.S_IMODE(os.lstat(top).st_mode)}
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            out[p] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def check_private(top, want_files):
    found = modes(top)
    names = {os.path.basename(p) for p in found}
    for n in want_files:
        e2e.check(n in names, "%s was not created under %s: %s" % (n, top, sorted(names)))
    bad = []
    for p, m in sorted(found.items()):
        want = 0o700 if stat.S_ISDIR(os.lstat(p).st_mode) else 0o600
        if m != want:
            bad.append("%s %04o (want %04o)" % (p, m, want))
    e2e.check(not bad, "group/other may access:\n  " + "\n  ".join(bad))


def start_pair(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    env.collector_config()
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])])
    col = env.collector().start()
    col.wait_log("listening on")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    return col, ag, log, conf


def test_state_files_are_private(env):
    # The collector's store directory and the agent's state_dir exist
    # already, 0755, as systemd's StateDirectory= leaves them.
    state = os.path.join(env.dir, "state")
    mkdir_mode(state, 0o755)
    mkdir_mode(os.path.join(state, "web-01"), 0o755)
    col, ag, log, conf = start_pair(env)
    append(log, "ERROR one\nERROR two\n")
    wait_count(env, 2)
    # While both run: the databases with their -wal and -shm, the lock,
    # the status socket.
    check_private(state, ["collector.db", "collector.db-wal", "collector.db-shm",
                          "spool.db", "spool.db-wal", "spool.db-shm", "spool.lock"])
    col.wait_log(r"state: mode 0755 allowed group/other access; tightened to 0700")
    ag.wait_log(r"web-01: mode 0755 allowed group/other access; tightened to 0700")

    # Files an older version left readable are tightened when opened.
    ag.stop()
    col.stop()
    for p, m in modes(state).items():
        if not stat.S_ISDIR(os.lstat(p).st_mode) and not stat.S_ISSOCK(os.lstat(p).st_mode):
            os.chmod(p, 0o644)
    os.chmod(state, 0o755)
    os.chmod(os.path.join(state, "web-01"), 0o750)
    cbefore = len(col.log())
    col.start()
    col.wait_log("listening on", after=cbefore)
    before = len(ag.log())
    ag.start()
    ag.wait_log("connected to", after=before)
    append(log, "ERROR three\n")
    wait_count(env, 3)
    check_private(state, ["collector.db", "spool.db"])
    ag.wait_log(r"spool\.db: mode 0644 allowed group/other access; tightened to 0600",
                after=before)
    col.wait_log(r"collector\.db: mode 0644 allowed group/other access; tightened to 0600",
                 after=cbefore)


def test_key_readable_by_others_is_refused(env):
    env.make_pki()
    log = env.write("logs/app.log", "")
    col_conf = env.collector_config()
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])])
    key = os.path.join(env.pki, "web-01.key")
    ckey = os.path.join(env.pki, "collector.key")
    want = r"pki/%s\.key: mode 0640 allows group/other access; chmod 600 it"

    # tocsinctl wrote every key 0600.
    for n in os.listdir(env.pki):
        if n.endswith(".key"):
            m = stat.S_IMODE(os.stat(os.path.join(env.pki, n)).st_mode)
            e2e.check(m == 0o600, "tocsinctl wrote %s %04o" % (n, m))

    os.chmod(key, 0o640)
    os.chmod(ckey, 0o640)
    for argv, name in (([e2e.AGENT, "-n", "-c", conf], "web-01"),
                       ([e2e.AGENT, "-d", "-c", conf], "web-01"),
                       ([e2e.COLLECTOR, "-n", "-c", col_conf], "collector"),
                       ([e2e.COLLECTOR, "-d", "-c", col_conf], "collector")):
        rc, out, err = env.run(argv, expect=None, timeout=30)
        e2e.check(rc != 0, "%s started with a 0640 key:\n%s%s" % (argv, out, err))
        e2e.check(re.search(want % name, err),
                  "%s: no mode in the error:\n%s" % (" ".join(argv), err))
    e2e.check(not os.path.exists(os.path.join(env.dir, "state", "web-01", "spool.db")),
              "the agent opened its spool before refusing its key")

    # The CA key, when tocsinctl issues a certificate.
    ca = os.path.join(env.pki, "ca.key")
    os.chmod(ca, 0o644)
    rc, out, err = env.run([e2e.CTL, "pki", "issue-agent", env.pki, "db-01"], expect=None)
    e2e.check(rc != 0 and "ca.key: mode 0644 allows group/other access" in err,
              "issue-agent with a 0644 CA key: rc %d\n%s" % (rc, err))
    e2e.check(not os.path.exists(os.path.join(env.pki, "db-01.key")), "a key was issued")

    # Tightened, everything starts.
    for p in (key, ckey, ca):
        os.chmod(p, 0o600)
    env.run([e2e.AGENT, "-n", "-c", conf])
    env.run([e2e.COLLECTOR, "-n", "-c", col_conf])
    env.run([e2e.CTL, "pki", "issue-agent", env.pki, "db-01"])


def test_state_dir_of_another_user_is_refused(env):
    if os.geteuid() != 0:
        print("  (not root: cannot chown to nobody; skipped)")
        return
    env.make_pki()
    log = env.write("logs/app.log", "")
    col_conf = env.collector_config()
    conf = env.agent_config("web-01", [(log, [("e", "ERROR", "error")])])
    state = os.path.join(env.dir, "state")
    mkdir_mode(state, 0o700)
    agent_dir = os.path.join(state, "web-01")
    mkdir_mode(agent_dir, 0o755)
    os.chown(agent_dir, NOBODY, NOBODY)
    rc, out, err = env.run([e2e.AGENT, "-d", "-c", conf], expect=None, timeout=30)
    e2e.check(rc != 0, "agent ran with a state_dir owned by nobody:\n%s" % err)
    e2e.check("state/web-01: owned by uid %d (mode 0755)" % NOBODY in err,
              "agent error does not name the path, owner and mode:\n%s" % err)
    e2e.check(stat.S_IMODE(os.stat(agent_dir).st_mode) == 0o755 and
              os.listdir(agent_dir) == [], "the agent touched a directory not its own")

    os.chown(state, NOBODY, NOBODY)
    rc, out, err = env.run([e2e.COLLECTOR, "-d", "-c", col_conf], expect=None, timeout=30)
    e2e.check(rc != 0, "collector ran with a store directory owned by nobody:\n%s" % err)
    e2e.check("state: owned by uid %d (mode 0700)" % NOBODY in err,
              "collector error does not name the path, owner and mode:\n%s" % err)
    e2e.check(not os.path.exists(os.path.join(state, "collector.db")),
              "the collector created its store in a directory not its own")

    # Given back to us: both run and deliver.
    os.chown(state, 0, 0)
    os.chown(agent_dir, 0, 0)
    col = env.collector().start()
    col.wait_log("listening on")
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    append(log, "ERROR back\n")
    wait_count(env, 1)


if __name__ == "__main__":
    e2e.main([test_state_files_are_private, test_key_readable_by_others_is_refused,
              test_state_dir_of_another_user_is_refused])
