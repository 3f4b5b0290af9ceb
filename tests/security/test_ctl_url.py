#!/usr/bin/env python3
"""tocsinctl --url refusals (docs/security.md, docs/api.md): the token
file must be a regular file of the user's with mode 0600 or stricter
(else refused, the path named); a token that is not one printable line
is refused before anything is sent; the server's certificate must chain
to --cacert (a wrong CA, or the system CAs, are refused); only https;
and the token never shows in any output, even on errors."""

import os
import shutil

import tocsin_e2e as e2e
from test_api import api_config, token


def write_token(env, name, text, mode=0o600):
    path = os.path.join(env.dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_ctl_url_refusals(env):
    env.make_pki()
    api = api_config(env)
    col = env.collector().start()
    col.wait_log("api: listening on https://127.0.0.1:%d" % api.port)
    secret = token(env, "ops", "operator")
    url = "https://127.0.0.1:%d" % api.port
    ca = os.path.join(env.pki, "ca.crt")
    good = write_token(env, "ok.token", secret + "\n")
    outputs = []

    def ctl(*args, expect):
        rc, out, err = env.run([e2e.CTL] + list(args), expect=expect)
        outputs.append(out + err)
        return out, err

    # The good case works (the refusals below are not for another reason).
    out, _ = ctl("--url", url, "--token-file", good, "--cacert", ca,
                 "incidents", "list", "--json", expect=0)
    e2e.check(out == "[]\n", out)
    # -c: the collector's tls.ca is the default CA.
    out, _ = ctl("-c", env.collector_conf, "--url", url, "--token-file", good,
                 "incidents", "list", expect=0)

    # Group or other may read the token file: refused, path named.
    for mode in (0o644, 0o640, 0o604, 0o660):
        bad = write_token(env, "wide.token", secret + "\n", mode)
        out, err = ctl("--url", url, "--token-file", bad, "--cacert", ca,
                       "incidents", "list", expect=1)
        e2e.check(out == "" and bad in err and "chmod 600" in err, err)
    # Not a regular file.
    out, err = ctl("--url", url, "--token-file", env.dir, "--cacert", ca,
                   "incidents", "list", expect=1)
    e2e.check(env.dir in err and "not a regular file" in err, err)
    # Another user's file (only root can make one).
    if os.geteuid() == 0:
        other = write_token(env, "other.token", secret + "\n")
        os.chown(other, 65534, 65534)
        out, err = ctl("--url", url, "--token-file", other, "--cacert", ca,
                       "incidents", "list", expect=1)
        e2e.check(other in err and "not owned by this user" in err, err)
    # A token with a header in it, an empty one, two lines.
    for text in (secret + "\r\nX-Evil: 1\n", "\n", secret + "\n" + secret,
                 "tct_a b\n"):
        bad = write_token(env, "odd.token", text)
        out, err = ctl("--url", url, "--token-file", bad, "--cacert", ca,
                       "incidents", "list", expect=1)
        e2e.check(out == "" and bad in err, err)
    e2e.check("X-Evil" not in col.log(), "header sent")
    # No --token-file at all.
    _, err = ctl("--url", url, "--cacert", ca, "incidents", "list", expect=1)
    e2e.check("--token-file" in err, err)

    # The wrong CA: another PKI's, and the system CAs (no --cacert, no
    # -c): refused in the handshake, nothing printed on stdout.
    other_pki = os.path.join(env.dir, "other-pki")
    env.run([e2e.CTL, "pki", "init", other_pki])
    out, err = ctl("--url", url, "--token-file", good, "--cacert",
                   os.path.join(other_pki, "ca.crt"), "incidents", "list",
                   expect=1)
    e2e.check(out == "" and err.startswith("tocsinctl: 127.0.0.1: ")
              and "certificate" in err.lower(), err)
    out, err = ctl("--url", url, "--token-file", good, "incidents", "list",
                   expect=1)
    e2e.check(out == "" and "certificate" in err.lower(), err)
    # Only https, only a base URL.
    for u in ("http://127.0.0.1:%d" % api.port, url + "/api/v1/x",
              url + "/?a=1", "https://user:pw@127.0.0.1:%d" % api.port,
              "127.0.0.1"):
        out, err = ctl("--url", u, "--token-file", good, "--cacert", ca,
                       "incidents", "list", expect=1)
        e2e.check(out == "" and "--url" in err, "%s: %s" % (u, err))
    # --token-file and --cacert without --url: a usage error.
    ctl("-c", env.collector_conf, "--token-file", good, "incidents", "list",
        expect=2)

    # A wrong token, a revoked one: the API's 401, the token not echoed.
    wrong = write_token(env, "wrong.token", "tct_" + "A" * 43 + "\n")
    _, err = ctl("--url", url, "--token-file", wrong, "--cacert", ca,
                 "incidents", "list", expect=1)
    e2e.check(err.startswith("tocsinctl: 127.0.0.1: 401 "), err)
    env.ctl("tokens", "revoke", "ops")
    _, err = ctl("--url", url, "--token-file", good, "--cacert", ca,
                 "incidents", "ack", "1", expect=1)
    e2e.check(err.startswith("tocsinctl: 127.0.0.1: 401 "), err)

    # A filter too long for a URL: refused, never sent without it.
    out, err = ctl("--url", url, "--token-file", good, "--cacert", ca,
                   "incidents", "list", "--json", "--host", "\xe9" * 1500,
                   expect=1)
    e2e.check(out == "" and ("too long" in err or " 414 " in err), err)

    # Never the token, in any output above.
    for o in outputs:
        e2e.check(secret not in o and "A" * 43 not in o, o)
    shutil.rmtree(other_pki)


if __name__ == "__main__":
    e2e.main([test_ctl_url_refusals])
