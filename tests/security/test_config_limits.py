#!/usr/bin/env python3
"""Configuration file limits (issue 9, item 10).

Attacker: whoever can hand the daemons a config file (a careless
generator, a compromised config management run, a shared include
directory). Promise: loading is linear in the file's size and the size
is capped, so `-n` and a SIGHUP reload answer promptly, whatever the
file: a file over the cap (1 MiB) is refused before parsing with an
error naming it, its size and the cap; the most keys that fit under the
cap parse in a fraction of a second of CPU (it took ~15 s when
duplicate detection was quadratic); duplicate keys are still refused
with both line numbers."""

import os
import resource
import subprocess

import tocsin_e2e as e2e

CAP = 1024 * 1024

AGENT_HEAD = ("collector: {address: 127.0.0.1:7400}\n"
              "tls: {ca: pki/ca.crt, cert: pki/web-01.crt, key: pki/web-01.key}\n"
              "state_dir: state/web-01\n")
AGENT_TAIL = ("files:\n  - path: /tmp/none.log\n    rules:\n"
              "      - {name: r, match: x, severity: error}\n")
COLLECTOR_HEAD = ("listen: 127.0.0.1:7400\n"
                  "tls: {ca: pki/ca.crt, cert: pki/collector.crt, "
                  "key: pki/collector.key}\n"
                  "store: {path: state/collector.db}\n")


def check_config(env, binary, path, expect):
    """Run BINARY -n -c PATH; return (stderr, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([binary, "-n", "-c", path], capture_output=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = p.stderr.decode("utf-8", "replace")
    e2e.check(p.returncode == expect, "%s -n -c %s exited %d, expected %d: %s"
              % (os.path.basename(binary), path, p.returncode, expect, err[-2000:]))
    return err, cpu


def test_oversized_refused(env):
    env.make_pki()
    # Valid YAML (a comment) one byte over the cap, then just under it.
    pad = "#" * (CAP - len(AGENT_HEAD) - len(AGENT_TAIL)) + "\n"
    big = env.write("big-agent.yaml", AGENT_HEAD + pad + AGENT_TAIL)
    size = os.path.getsize(big)
    e2e.check(size == CAP + 1, "size %d" % size)
    err, _ = check_config(env, e2e.AGENT, big, 1)
    e2e.check("big-agent.yaml: the file is %d bytes, over the limit of %d "
              "bytes for a configuration file" % (size, CAP) in err, err)
    ok = env.write("ok-agent.yaml", AGENT_HEAD + pad[2:] + AGENT_TAIL)
    err, _ = check_config(env, e2e.AGENT, ok, 0)

    pad = "#" * (CAP - len(COLLECTOR_HEAD)) + "\n"
    big = env.write("big-collector.yaml", COLLECTOR_HEAD + pad)
    err, _ = check_config(env, e2e.COLLECTOR, big, 1)
    e2e.check("big-collector.yaml: the file is %d bytes, over the limit"
              % (CAP + 1) in err, err)
    # A stream has no size to check first: it is cut at the cap.
    p = subprocess.run("head -c 3000000 /dev/zero | %s -n -c /dev/stdin"
                       % e2e.COLLECTOR, shell=True, capture_output=True,
                       timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    e2e.check(p.returncode == 1 and
              "/dev/stdin: the file is over the limit of %d bytes" % CAP in err,
              "stdin: %d %s" % (p.returncode, err))


def many_keys(n):
    return "".join(" k%05x: 1\n" % i for i in range(n))


def test_many_keys_linear(env):
    env.make_pki()
    # As many keys as fit under the cap, as labels (valid for the agent)
    # and under an unknown key (refused by the collector, after parsing).
    n = 90000
    agent = env.write("many-agent.yaml",
                      AGENT_HEAD + "labels:\n" + many_keys(n) + AGENT_TAIL)
    e2e.check(os.path.getsize(agent) < CAP, "the file is over the cap")
    _, cpu = check_config(env, e2e.AGENT, agent, 0)
    # An order of magnitude, not a benchmark (bench/README.md has those):
    # quadratic duplicate detection took ~15 s of CPU here.
    e2e.check(cpu < 5, "agent -n used %.1f s of CPU for %d keys" % (cpu, n))
    col = env.write("many-collector.yaml",
                    COLLECTOR_HEAD + "extra:\n" + many_keys(n))
    err, cpu = check_config(env, e2e.COLLECTOR, col, 1)
    e2e.check("unknown key 'extra'" in err, err)
    e2e.check(cpu < 5, "collector -n used %.1f s of CPU for %d keys"
              % (cpu, n))


def test_duplicates_still_refused(env):
    env.make_pki()
    n = 40000
    head_lines = AGENT_HEAD.count("\n") + 1  # + "labels:"
    dup = env.write("dup-agent.yaml",
                    AGENT_HEAD + "labels:\n" + many_keys(n) +
                    " k00000: 2\n k%05x: 3\n" % (n - 1) + AGENT_TAIL)
    err, _ = check_config(env, e2e.AGENT, dup, 1)
    first = head_lines + 1
    e2e.check("dup-agent.yaml:%d: duplicate key 'k00000' (first at line %d)"
              % (first + n, first) in err, err)
    e2e.check("dup-agent.yaml:%d: duplicate key 'k%05x' (first at line %d)"
              % (first + n + 1, n - 1, first + n - 1) in err, err)
    col = env.write("dup-collector.yaml",
                    COLLECTOR_HEAD + "name: a\nname: b\n")
    err, _ = check_config(env, e2e.COLLECTOR, col, 1)
    e2e.check("dup-collector.yaml:5: duplicate key 'name' (first at line 4)"
              in err, err)


e2e.main([test_oversized_refused, test_many_keys_linear,
          test_duplicates_still_refused])
