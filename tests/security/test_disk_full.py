#!/usr/bin/env python3
"""The collector's disk fills up (docs/security.md, "An agent host"): an
agent that floods the collector until its store's file system is full
makes the collector refuse to ack, not lose or half-store; once space is
back, every line arrives exactly once and nothing already accepted is
lost. The store lives on a small tmpfs mounted for the test (root and
mount(2) needed; skipped, saying why, where they are not)."""

import json
import os
import subprocess
import time

import tocsin_e2e as e2e

LINES = 60000


def mount_tmpfs(env, path, size):
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        e2e.skip("needs root to mount a tmpfs")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size,
                        "tmpfs", path], capture_output=True)
    if p.returncode != 0:
        e2e.skip("cannot mount a tmpfs here: %s" % p.stderr.decode().strip())
    env.cleanups.append(lambda: subprocess.run(["umount", "-l", path]))


def stored_ids(env):
    evs = json.loads(env.ctl("events", "list", "--json", "--limit", "0"))
    return [int(e["fields"]["n"]) for e in evs]


def test_collector_store_full_then_space(env):
    env.make_pki(agents=("web-01",))
    # Only the collector's store is on the small file system; the
    # agent's spool has room to hold what the collector cannot take.
    state = os.path.join(env.dir, "cstore")
    mount_tmpfs(env, state, "3m")
    log = env.write("logs/app.log", "")
    env.collector_config()
    env.write("collector.yaml", open(env.collector_conf).read().replace(
        "store: {path: state/collector.db}", "store: {path: cstore/collector.db}"))
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [(log, [("line", r"^L(?<n>\d+) ", "info")])])
    ag = env.agent(conf).start()
    ag.wait_log("connected to")
    pad = "x" * 150
    with open(log, "a") as f:
        for i in range(LINES):
            f.write("L%d %s\n" % (i, pad))
    col.wait_log(r"store: commit failed: .*(full|disk|I/O)", timeout=120)
    e2e.check(col.alive(), "collector died on a full disk")
    # While full, the collector keeps failing and retrying: it stays up,
    # keeps serving reads, and stores nothing half-way.
    time.sleep(3)
    e2e.check(col.alive(), "collector died while its disk was full")
    during = stored_ids(env)
    e2e.check(len(during) < LINES, "all lines fit: the disk never filled")
    e2e.check(len(set(during)) == len(during), "duplicates while full")
    # The agent holds what was not acked; give the collector room again.
    subprocess.run(["mount", "-o", "remount,size=256m", state], check=True)
    ids = e2e.wait_for(lambda: (lambda s: s if len(s) >= LINES else None)(stored_ids(env)),
                       240, "%d events after space came back" % LINES, interval=1)
    e2e.check(len(ids) == LINES, "%d events stored for %d lines" % (len(ids), LINES))
    e2e.check(sorted(ids) == list(range(LINES)),
              "lost or duplicated: %d unique of %d" % (len(set(ids)), len(ids)))
    e2e.check(col.alive() and ag.alive(), "a daemon died")


if __name__ == "__main__":
    e2e.main([test_collector_store_full_then_space])
