#!/usr/bin/env python3
"""The journald input on the default journal (no `namespace:`), against
a live systemd-journald: what most hosts use.

The default instance listens on /run/systemd/journal/{socket,stdout,
dev-log} and writes /run/log/journal/MACHINE_ID (or /var/log/journal);
on a host those belong to the host's own journald. So the test runs
itself again in a private mount namespace (`unshare --mount
--propagation private`), mounts an empty tmpfs on /run and, if it
exists, on /var/log/journal, and there starts systemd-journald with no
namespace. The host's journal and sockets are hidden from the test's
processes, not touched, and the mounts go away with the test's last
process. The agent and journalctl (the oracle) run in the same mount
namespace and see only the test's journal.

The cases are those of test_journald_live.py (filters against what
journald stored, SIGKILL and resume, agent before journald and journald
restarted, the cursor's file vacuumed, hostile entries), run against the
default instance. It needs root, systemd-journald and unshare
(util-linux); without the last two, or where mounting is not allowed (an
unprivileged container), it is skipped (exit 77) and says why.
"""

import os
import shutil
import signal
import subprocess
import sys

import tocsin_e2e as e2e
import test_journald_live as jl

INSIDE = "TOCSIN_E2E_PRIVATE_MOUNTS"


def enter_private_mounts():
    """Run this script again in a private mount namespace; returns only
    in the namespace, with /run (and /var/log/journal) empty."""
    if os.environ.get(INSIDE) != "1":
        unshare = shutil.which("unshare")
        if unshare is None:
            e2e.skip("unshare (util-linux) is not installed; the default "
                     "journal can only be tested in a private mount "
                     "namespace")
        env = dict(os.environ, **{INSIDE: "1"})
        os.execve(unshare, [unshare, "--mount", "--propagation", "private",
                            sys.executable, os.path.abspath(__file__)]
                  + sys.argv[1:], env)
    for path in ("/run", "/var/log/journal"):
        if not os.path.isdir(path):
            continue
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755",
                            "tocsin-e2e", path], capture_output=True)
        if p.returncode != 0:
            e2e.skip("cannot mount a tmpfs on %s in a private mount "
                     "namespace (%s); the default journal is not tested"
                     % (path, p.stderr.decode().strip()))


if __name__ == "__main__":
    if jl.JOURNALD is None:
        e2e.skip("systemd-journald is not installed (Debian: systemd); "
                 "the live journald test needs it")
    if os.geteuid() != 0:
        print("FAIL: the default journald test must run as root: it mounts "
              "a private /run and journald reads the trusted fields of its "
              "peers from /proc")
        sys.exit(1)
    enter_private_mounts()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    jl.Journald.default_instance = True
    mid = jl.MachineId()
    try:
        e2e.Env.mid = mid
        tests = [jl.test_filters, jl.test_kill_resume,
                 jl.test_agent_first_and_journald_restart,
                 jl.test_cursor_file_vacuumed, jl.test_bad_entries]
        if len(sys.argv) > 1:
            tests = [t for t in tests if t.__name__ in sys.argv[1:]]
        e2e.main(tests)
    finally:
        for jd in jl.LIVE:
            jd.cleanup()
        mid.close()
