#!/usr/bin/env python3
"""Configuration checks through the real binaries: -n says
"configuration OK" for good files, and every bad file is refused with
exit status 1 and a message naming the file and line."""

import os
import re

import tocsin_e2e as e2e


def base(env):
    env.make_pki()
    env.write("logs/app.log", "")
    col = env.collector_config()
    ag = env.agent_config("web-01", [(os.path.join(env.dir, "logs/app.log"),
                                      [("e", "ERROR", "error")])])
    return col, ag


def test_check_mode_ok(env):
    col, ag = base(env)
    _, out, _ = env.run([e2e.COLLECTOR, "-n", "-c", col])
    e2e.check(out.strip() == "configuration OK", "collector -n said %r" % out)
    _, out, _ = env.run([e2e.AGENT, "-n", "-c", ag])
    e2e.check(out.strip() == "configuration OK", "agent -n said %r" % out)


def refused(env, prog, path, pattern):
    import re
    _, out, err = env.run([prog, "-n", "-c", path], expect=1)
    e2e.check(re.search(pattern, err), "expected /%s/ in: %r" % (pattern, err))
    e2e.check("configuration OK" not in out, "bad config accepted")


def test_collector_errors(env):
    col, _ = base(env)
    good = open(col).read()
    env.write("bad1.yaml", good + "listne: 1.2.3.4:5\n")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "bad1.yaml"),
            r"bad1\.yaml:4: .*unknown key 'listne'")
    env.write("bad2.yaml", good.replace("127.0.0.1:%d" % env.port, "127.0.0.1:99999"))
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "bad2.yaml"), r"bad2\.yaml:1: ")
    env.write("bad3.yaml", good.replace("collector.key", "missing.key"))
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "bad3.yaml"), r"missing\.key")
    env.write("bad4.yaml", "listen: [oops\n")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "bad4.yaml"), r"bad4\.yaml:\d+: ")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "nope.yaml"), r"nope\.yaml")
    # correlation: a good section passes -n, bad ones name file and line.
    env.write("corr.yaml", good + "correlation:\n"
              "  spread: {min_hosts: 4, window: 5m}\n"
              "  topology:\n"
              "    depends_on:\n"
              "      - {from: 'web-*', to: cache-01}\n")
    _, out, _ = env.run([e2e.COLLECTOR, "-n", "-c", os.path.join(env.dir, "corr.yaml")])
    e2e.check(out.strip() == "configuration OK", "collector -n said %r" % out)
    env.write("bad5.yaml", good + "correlation:\n"
              "  topology:\n"
              "    depends_on:\n"
              "      - {from: db-1, to: db-1}\n")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "bad5.yaml"),
            r"bad5\.yaml:\d+: correlation\.topology\.depends_on\[0\]: "
            r"'db-1' depends on itself")
    env.write("bad6.yaml", good + "correlation: {trend: {count: 1}}\n")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "bad6.yaml"),
            r"bad6\.yaml:\d+: correlation\.trend\.count: '1' is out of range")
    # api: (docs/api.md): each broken key named with file and line.
    api_port = e2e.free_port()
    env.write("api.yaml", good + "api: {listen: 127.0.0.1:%d}\n" % api_port)
    _, out, _ = env.run([e2e.COLLECTOR, "-n", "-c", os.path.join(env.dir, "api.yaml")])
    e2e.check(out.strip() == "configuration OK", "collector -n said %r" % out)
    for i, (api, want) in enumerate((
            ("{listen: 127.0.0.1:99999}", r"api\.listen"),
            ("{listen: nohost}", r"api\.listen"),
            ("{listen: 127.0.0.1:%d, tls: {cert: pki/collector.crt}}" % api_port,
             r"api\.tls: give both cert and key, or neither"),
            ("{listen: 127.0.0.1:%d, tls: {cert: pki/ca.crt, key: pki/collector.key}}"
             % api_port, r"api: tls: private key .* does not match"),
            ("{listen: 127.0.0.1:%d, anonymous_read: maybe}" % api_port,
             r"api\.anonymous_read"),
            ("{listen: 127.0.0.1:%d, max_page: 0}" % api_port,
             r"api\.max_page: '0' is out of range"),
            ("{listen: 127.0.0.1:%d, max_queue: 100000}" % api_port,
             r"api\.max_queue: '100000' is out of range"),
            ("{listen: 127.0.0.1:%d, request_timeout: 1ms}" % api_port,
             r"api\.request_timeout"),
            ("{listen: 127.0.0.1:%d, dashboard: yes}" % api_port,
             r"unknown key 'dashboard'"))):
        name = "api%d.yaml" % i
        env.write(name, good + "api: %s\n" % api)
        refused(env, e2e.COLLECTOR, os.path.join(env.dir, name),
                r"%s:\d+: .*%s" % (re.escape(name), want))


def test_agent_errors(env):
    _, ag = base(env)
    good = open(ag).read()
    env.write("a1.yaml", good.replace("severity: error", "severity: fatal"))
    refused(env, e2e.AGENT, os.path.join(env.dir, "a1.yaml"), r"a1\.yaml:\d+: .*fatal")
    env.write("a2.yaml", good.replace("match: 'ERROR'", "match: 'ERROR ('"))
    refused(env, e2e.AGENT, os.path.join(env.dir, "a2.yaml"), r"a2\.yaml:\d+: .*rule 'e'")
    env.write("a3.yaml", good + "spool: {max_bytes: 12XB}\n")
    refused(env, e2e.AGENT, os.path.join(env.dir, "a3.yaml"), r"a3\.yaml:\d+: .*12XB")
    env.write("a4.yaml", good.replace("state_dir:", "statedir:"))
    refused(env, e2e.AGENT, os.path.join(env.dir, "a4.yaml"), r"a4\.yaml:\d+: .*statedir")


def test_agent_all_errors(env):
    """Every bad pattern is reported in one pass, with its dotted key and
    line, alongside the other errors of the file."""
    _, ag = base(env)
    good = open(ag).read()
    env.write("r1.yaml", good.replace(
        "      - {name: e, match: 'ERROR', severity: error}\n",
        "      - {name: e, match: 'ERROR (', severity: error}\n"
        "      - {name: f, match: 'ok', severity: fatal}\n"
        "      - name: g\n"
        "        match: '[z'\n"
        "      - {name: h, match: '(?<n>x)', fingerprint: '{rule}:{m}'}\n"
        "    multiline: {start: '^(x'}\n"))
    _, out, err = env.run([e2e.AGENT, "-n", "-c", os.path.join(env.dir, "r1.yaml")],
                          expect=1)
    import re
    for pat in (r"r1\.yaml:\d+: files\[0\]\.rules\[0\]\.match: rule 'e': bad regex",
                r"r1\.yaml:\d+: files\[0\]\.rules\[1\]\.severity: 'fatal'",
                r"r1\.yaml:\d+: files\[0\]\.rules\[2\]\.match: rule 'g': bad regex",
                r"r1\.yaml:\d+: files\[0\]\.rules\[3\]\.fingerprint: rule 'h'",
                r"r1\.yaml:\d+: files\[0\]\.multiline\.start: bad regex"):
        e2e.check(re.search(pat, err), "expected /%s/ in: %r" % (pat, err))
    # The line is the key's own: rule g's match is on its own line.
    text = open(os.path.join(env.dir, "r1.yaml")).read().splitlines()
    gline = [i + 1 for i, l in enumerate(text) if "match: '[z'" in l][0]
    e2e.check("r1.yaml:%d: files[0].rules[2].match" % gline in err,
              "rule g's line %d not named: %r" % (gline, err))


def test_command_line(env):
    """-h/--help and -V/--version answer on stdout with 0 in all three
    programs; a bad option is a short usage on stderr and exit 2."""
    import re
    for prog, name in ((e2e.AGENT, "tocsin-agent"),
                       (e2e.COLLECTOR, "tocsin-collector"),
                       (e2e.CTL, "tocsinctl")):
        for opt in ("-h", "--help"):
            _, out, err = env.run([prog, opt])
            e2e.check(out.startswith("usage: %s" % name) and "exit status" in out,
                      "%s %s said %r" % (name, opt, out))
            e2e.check(err == "", "%s %s wrote to stderr: %r" % (name, opt, err))
        for opt in ("-V", "--version"):
            _, out, _ = env.run([prog, opt])
            e2e.check(re.fullmatch(r"%s \d+\.\d+\.\d+\n" % name, out),
                      "%s %s said %r" % (name, opt, out))
        for argv in (["-x"], ["--bogus"]):
            _, out, err = env.run([prog] + argv, expect=2)
            e2e.check(out == "" and "usage: %s" % name in err,
                      "%s %s: out %r err %r" % (name, argv, out, err))
            e2e.check(len(err.splitlines()) <= 6, "usage too long: %r" % err)
    # Extra operands are usage errors too, not configuration errors.
    env.run([e2e.AGENT, "-n", "extra"], expect=2)
    env.run([e2e.COLLECTOR, "-n", "extra"], expect=2)
    env.run([e2e.AGENT, "status", "--bogus"], expect=2)
    env.run([e2e.AGENT, "test-rules", "--bogus"], expect=2)
    _, out, _ = env.run([e2e.AGENT, "status", "--help"])
    e2e.check(out.startswith("usage: tocsin-agent"), "status --help said %r" % out)


def test_errors_read_as_a_cli(env):
    """Commands (tocsinctl, -n, status, test-rules) say their errors as a
    CLI does, "program: message", not as a daemon's timestamped log line."""
    missing = env.dir + "/missing.yaml"
    cases = [
        ("tocsinctl", [e2e.CTL, "-c", missing, "events", "list"]),
        ("tocsin-agent", [e2e.AGENT, "-n", "-c", missing]),
        ("tocsin-collector", [e2e.COLLECTOR, "-n", "-c", missing]),
        ("tocsin-agent", [e2e.AGENT, "test-rules", "-c", missing, missing]),
    ]
    for name, argv in cases:
        _, _, err = env.run(argv, expect=1)
        lines = err.splitlines()
        e2e.check(lines and all(l.startswith(name + ": ") for l in lines),
                  "%s: not CLI-style errors: %r" % (" ".join(argv[1:]), err))
        e2e.check("missing.yaml" in err, "%s: the file is not named: %r" % (name, err))


def test_check_mode_system(env):
    """-n also checks what start-up needs from the system, and changes
    nothing on disk: state_dir and the store's folder can be created,
    listen can be bound; a port already taken is a warning for -n (the
    running collector may hold it) and an error at start-up, which then
    leaves no database behind."""
    import socket
    col, ag = base(env)
    good_col, good_ag = open(col).read(), open(ag).read()
    env.write("plain", "a regular file\n")

    # Nothing created by a successful check.
    env.run([e2e.AGENT, "-n", "-c", ag])
    env.run([e2e.COLLECTOR, "-n", "-c", col])
    e2e.check(not os.path.exists(os.path.join(env.dir, "state")),
              "-n created the state directory")

    env.write("s1.yaml", good_ag.replace("state_dir: state/web-01",
                                         "state_dir: plain/web-01"))
    refused(env, e2e.AGENT, os.path.join(env.dir, "s1.yaml"),
            r"s1\.yaml: state_dir: .*plain/web-01: cannot create it: "
            r".*plain is not a directory")
    env.write("s2.yaml", good_ag.replace("state_dir: state/web-01",
                                         "state_dir: plain"))
    refused(env, e2e.AGENT, os.path.join(env.dir, "s2.yaml"),
            r"s2\.yaml: state_dir: .*plain: not a directory")
    # Reported with the other errors of the run, not instead of them.
    env.write("s5.yaml", good_ag.replace("state_dir: state/web-01",
                                         "state_dir: plain/web-01")
              .replace("web-01.key", "missing.key"))
    refused(env, e2e.AGENT, os.path.join(env.dir, "s5.yaml"),
            r"missing\.key(.|\n)*s5\.yaml: state_dir: .*plain/web-01")
    env.write("s3.yaml", good_col.replace("state/collector.db",
                                          "plain/collector.db"))
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "s3.yaml"),
            r"s3\.yaml: store\.path: .*plain: not a directory")
    os.makedirs(os.path.join(env.dir, "dbdir/collector.db"))
    env.write("s4.yaml", good_col.replace("state/collector.db",
                                          "dbdir/collector.db"))
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "s4.yaml"),
            r"s4\.yaml: store\.path: .*collector\.db: not a regular file")

    # An address that is not this host's cannot be bound.
    env.write("l1.yaml", good_col.replace("127.0.0.1:%d" % env.port,
                                          "192.0.2.1:7400"))
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "l1.yaml"),
            r"l1\.yaml: listen 192\.0\.2\.1:7400: Cannot assign")

    # A port someone listens on: a warning for -n, an error at start.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", env.port))
    s.listen(1)
    try:
        _, out, err = env.run([e2e.COLLECTOR, "-n", "-c", col])
        e2e.check(out.strip() == "configuration OK", "-n said %r" % out)
        e2e.check("Address already in use" in err, "no warning: %r" % err)
        _, _, err = env.run([e2e.COLLECTOR, "-d", "-c", col], expect=1)
        e2e.check("listen 127.0.0.1:%d: Address already in use" % env.port in err,
                  "start-up said %r" % err)
    finally:
        s.close()
    e2e.check(not os.path.exists(os.path.join(env.dir, "state/collector.db")),
              "a collector that could not listen created its database")


def test_hint_keys(env):
    """hints.public_key (agent) and hints.signing_key (collector): a key
    that is missing, of the wrong kind or readable by others is refused
    by -n with the file and line; the collector's default, the pki dir's
    hint-signing.key, is checked the same way; pki init run again on a
    CA made before hints adds the pair and keeps the CA."""
    col, ag = base(env)
    pki = env.pki
    key = os.path.join(pki, "hint-signing.key")
    e2e.check(oct(os.stat(key).st_mode & 0o777) == "0o600", "key mode")
    good_ag = open(ag).read()
    env.write("ag1.yaml", good_ag + "hints: {public_key: pki/hint-signing.pub}\n")
    _, out, _ = env.run([e2e.AGENT, "-n", "-c", os.path.join(env.dir, "ag1.yaml")])
    e2e.check(out.strip() == "configuration OK", "agent -n said %r" % out)
    env.write("ag2.yaml", good_ag + "hints:\n  public_key: pki/nope.pub\n")
    refused(env, e2e.AGENT, os.path.join(env.dir, "ag2.yaml"),
            r"ag2\.yaml:\d+: hints\.public_key: hint public key .*nope\.pub")
    env.write("ag3.yaml", good_ag + "hints: {public_key: pki/ca.crt}\n")
    refused(env, e2e.AGENT, os.path.join(env.dir, "ag3.yaml"),
            r"ag3\.yaml:\d+: hints\.public_key: .*cannot load it")
    env.write("ag4.yaml", good_ag + "hints: {public_key: [a]}\n")
    refused(env, e2e.AGENT, os.path.join(env.dir, "ag4.yaml"), r"ag4\.yaml:\d+: ")

    good_col = open(col).read()
    env.write("c1.yaml", good_col + "hints:\n  signing_key: pki/hint-signing.pub\n")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "c1.yaml"),
            r"c1\.yaml:5: hints\.signing_key: hint signing key .*hint-signing\.pub: "
            r"mode 0644 allows group/other access")
    env.write("c2.yaml", good_col + "hints: {signing_key: pki/collector.key}\n")
    refused(env, e2e.COLLECTOR, os.path.join(env.dir, "c2.yaml"),
            r"c2\.yaml:4: hints\.signing_key: .*not an Ed25519 key")
    # The default key, beside tls.key, is held to the same rule.
    os.chmod(key, 0o640)
    refused(env, e2e.COLLECTOR, col,
            r"hints\.signing_key \(default, beside tls\.key\): .*mode 0640")
    os.chmod(key, 0o600)
    _, out, _ = env.run([e2e.COLLECTOR, "-n", "-c", col])
    e2e.check(out.strip() == "configuration OK", "collector -n said %r" % out)
    # Without it (a CA from before hints) the collector still starts.
    os.unlink(key)
    _, out, _ = env.run([e2e.COLLECTOR, "-n", "-c", col])
    e2e.check(out.strip() == "configuration OK", "collector -n said %r" % out)
    # pki init again: adds the pair, keeps the CA.
    ca = open(os.path.join(pki, "ca.crt")).read()
    os.unlink(os.path.join(pki, "hint-signing.pub"))
    _, out, _ = env.run([e2e.CTL, "pki", "init", pki])
    e2e.check("kept the CA" in out and "hint-signing.key" in out, out)
    e2e.check(open(os.path.join(pki, "ca.crt")).read() == ca, "CA replaced")
    e2e.check(oct(os.stat(key).st_mode & 0o777) == "0o600", "key mode")
    # And once more: nothing to add, refused as before.
    env.run([e2e.CTL, "pki", "init", pki], expect=1)


if __name__ == "__main__":
    e2e.main([test_check_mode_ok, test_errors_read_as_a_cli, test_collector_errors, test_agent_errors,
              test_agent_all_errors, test_command_line,
              test_check_mode_system, test_hint_keys])
