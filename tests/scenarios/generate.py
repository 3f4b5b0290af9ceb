#!/usr/bin/env python3
"""Scenario generator for correlation quality (issue 11 item 8).

Writes, for a fleet of N hosts and a seed, one log file per host, one
agent config per host whose rules match those logs (the event time is
taken from each line: `time: {field: ts}`), and ground.json: which
incidents (host + fingerprint, as `tocsinctl incidents list --json`
shows them) belong to which true problem, and each problem's true
root-cause host. The same (seed, hosts, start) gives byte-identical
output.

The fleet: cache-01 (a dependency), lb-01 (a load balancer with a
flapping link), db-01 and queue-01 (a database and a queue that uses
it) and N-4 application hosts app-{a,b,c}-NN in three clusters. Over 70 minutes of event time:

- dependency outage: cache-01 runs out of memory; the app hosts of
  clusters a and c log "connect to cache-01:6379 timed out" (field
  peer = cache-01). One problem, root cause cache-01.
- creeping failure: a worker memory leak reaches one app host after
  another over up to an hour. One problem, root cause the first host.
- bad deploy: cluster b's canary panics after a deploy, then the rest
  of cluster b; clusters a and c deploy another version cleanly. One
  problem, root cause the canary.
- two unrelated failures in the same minute: a full disk on an a host
  and a segfault on a c host. Two problems, each its own root cause.
- flapping link: lb-01's bond loses eth1 every few minutes; while it is
  down, the c hosts behind it log "upstream lb-01:443 connection reset".
  One problem, root cause lb-01.
- cascade: db-01's disk fills; queue-01 logs "upstream db-01:5432
  connection refused"; then the app hosts of clusters a and b log
  "connect to queue-01:5672 timed out". The apps name only queue-01,
  which names db-01: one problem, root cause db-01, two hops away.
- background noise: request logs that match no rule, and sporadic
  request errors (rule app-error) on distinct hosts at least 400 s
  apart. Never three in one spread window, so no spread problem; but
  eight openings of one class within 7 days are, by the documented
  default trend rule (count 5, period 7d), one proactive "recurring"
  problem, with no root-cause host: that is the truth. Fewer than
  TREND_COUNT would each stand alone.

Time alone must never link incidents: the outage, the creep, the flap
and the noise overlap in time on the same hosts.
"""

import argparse
import json
import os
import random
import time

SPAN_S = 4200  # 70 minutes of event time
TREND_COUNT = 5  # correlation.trend.count's default (docs/correlation.md)
DEFAULT_START = 1764892800  # 2025-12-05T00:00:00Z: files stable by default
INFRA = ["cache-01", "lb-01", "db-01", "queue-01"]
# Three app hosts per cluster at least: the bad deploy on cluster b
# must reach spread.min_hosts' default (3) to be a problem at all.
MIN_HOSTS = len(INFRA) + 9

PFX = r"^(?<ts>\S+) \S+ "
# (name, regex after the prefix, severity, fingerprint template or None).
# Specific rules come first: the first rule that matches makes the event.
RULES = [
    ("link-up", r"bond\d+: link status definitely up for interface (?<iface>\w+)",
     "ok", None),
    ("link-down", r"bond\d+: link status definitely down for interface (?<iface>\w+)",
     "error", None),
    ("upstream", r"ERROR (?:connect to|upstream) (?<peer>[A-Za-z0-9.-]+):(?<port>\d+) "
     r"(?<err>timed out|connection reset|connection refused)", "error", "{rule}:{peer}"),
    ("redis-oom", r"redis\[\d+\]: (?<what>OOM command not allowed|Out of memory)",
     "critical", None),
    ("worker-leak", r"worker (?<pid>\d+) rss (?<rss>\S+) exceeds limit", "error", None),
    ("app-panic", r"panic: (?<reason>.*)", "critical", None),
    ("db-fatal", r"postgres\[\d+\]: PANIC: (?<what>could not write to file \S+): "
     r"No space left on device", "critical", None),
    ("disk-full", r"ERROR write (?<path>\S+): No space left on device", "critical", None),
    ("segfault", r"kernel: (?<proc>[a-z-]+)\[\d+\]: segfault at", "error", None),
    ("app-error", r"ERROR request (?<req>\S+) failed: (?<reason>.*)", "error", None),
]
SEVERITY = {r[0]: r[2] for r in RULES}

NOISE_REASONS = ["invalid token", "validation failed for field email",
                 "payload too large", "unsupported media type",
                 "rate limited by policy", "checksum mismatch in body"]


def iso(ts):
    """RFC 3339 UTC with milliseconds, as the agent's time.format reads."""
    sec = int(ts)
    ms = int(round((ts - sec) * 1000))
    if ms == 1000:
        sec, ms = sec + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%03dZ" % ms


def fleet(n):
    """Host names and clusters: the INFRA hosts, then app hosts dealt
    round robin into clusters a, b, c."""
    if n < MIN_HOSTS:
        raise ValueError("need at least %d hosts, got %d" % (MIN_HOSTS, n))
    clusters = {"a": [], "b": [], "c": []}
    for i in range(n - len(INFRA)):
        c = "abc"[i % 3]
        clusters[c].append("app-%s-%02d" % (c, len(clusters[c]) + 1))
    return INFRA + [h for c in "abc" for h in clusters[c]], clusters


class Scenario:
    def __init__(self, seed, hosts):
        self.rng = random.Random(seed)
        self.seed = seed
        self.hosts, self.clusters = fleet(hosts)
        self.apps = [h for c in "abc" for h in self.clusters[c]]
        self.lines = {h: [] for h in self.hosts}  # host -> [(t, text)]
        self.problems = []

    def emit(self, host, t, text):
        self.lines[host].append((round(t, 3), text))

    def problem(self, pid, kind, title, root, incidents):
        """incidents: [(host, rule, fingerprint)]; kept in order, once."""
        seen = []
        for inc in incidents:
            if inc not in seen:
                seen.append(inc)
        self.problems.append({"id": pid, "kind": kind, "title": title,
                              "root_cause": root,
                              "incidents": [{"host": h, "rule": r, "fingerprint": f}
                                            for h, r, f in seen]})

    def repeat(self, host, t0, t1, lo, hi, text):
        """TEXT on HOST from t0 to t1, every lo..hi seconds."""
        t = t0
        while t < t1:
            self.emit(host, t, text() if callable(text) else text)
            t += self.rng.uniform(lo, hi)

    # --- the scenarios --------------------------------------------------
    def background(self):
        paths = ["/api/v1/items", "/api/v1/cart", "/login", "/api/v1/search"]
        for h in self.hosts:
            t = self.rng.uniform(0, 20)
            while t < SPAN_S:
                self.emit(h, t, "INFO GET %s/%d 200 %dms" % (
                    self.rng.choice(paths), self.rng.randrange(1, 10000),
                    self.rng.randrange(2, 300)))
                t += self.rng.uniform(10, 40)

    def noise(self):
        hosts = self.rng.sample(self.apps, min(8, len(self.apps)))
        t = 120.0
        for h in hosts:
            self.emit(h, t, "ERROR request req-%06x failed: %s" % (
                self.rng.randrange(1 << 24), self.rng.choice(NOISE_REASONS)))
            if len(hosts) < TREND_COUNT:
                self.problem("noise-%s" % h, "noise",
                             "sporadic request error on %s" % h,
                             h, [(h, "app-error", "app-error")])
            # 400 s or more apart: never three in one 10-minute window.
            t += self.rng.uniform(400, 480)
        if len(hosts) >= TREND_COUNT:
            self.problem("noise-recurring", "noise",
                         "app-error recurring on %d hosts (trend)" % len(hosts),
                         None, [(h, "app-error", "app-error") for h in hosts])

    def dependency_outage(self):
        t0, t1 = 600.0, 1200.0
        self.repeat("cache-01", t0, t1, 8, 12,
                    lambda: "redis[612]: OOM command not allowed when used memory > 'maxmemory'")
        victims = self.clusters["a"] + self.clusters["c"]
        for h in victims:
            self.repeat(h, t0 + self.rng.uniform(5, 60), t1 + self.rng.uniform(0, 30),
                        3, 8, "ERROR connect to cache-01:6379 timed out")
        self.problem("cache-outage", "dependency",
                     "cache-01 out of memory; its clients time out", "cache-01",
                     [("cache-01", "redis-oom", "redis-oom")] +
                     [(h, "upstream", "upstream:cache-01") for h in victims])

    def creep(self):
        order = list(self.apps)
        self.rng.shuffle(order)
        step = min(240.0, 3600.0 / (len(order) - 1))
        incs = []
        for i, h in enumerate(order):
            start = 300.0 + i * step + self.rng.uniform(0, 20)
            pid = self.rng.randrange(1000, 60000)
            self.repeat(h, start, SPAN_S - 60, 50, 90,
                        lambda: "worker %d rss %.1fGiB exceeds limit, restarting" % (
                            pid, self.rng.uniform(3.9, 4.4)))
            incs.append((h, "worker-leak", "worker-leak"))
        self.problem("creep", "creep", "worker memory leak creeping over the fleet",
                     order[0], incs)

    def bad_deploy(self):
        b = self.clusters["b"]
        canary = b[0]
        t0 = 2400.0
        for c in "ac":
            for h in self.clusters[c]:
                self.emit(h, t0 + self.rng.uniform(0, 300), "INFO deploy v2.13.4 finished")
        for h in b:
            start = t0 if h == canary else t0 + 120 + self.rng.uniform(0, 120)
            self.emit(h, start - 5, "INFO deploy v2.14.0 finished")
            self.repeat(h, start, t0 + 900, 5, 15,
                        "panic: runtime error: invalid memory address or nil "
                        "pointer dereference (release v2.14.0)")
        self.problem("bad-deploy", "deploy", "release v2.14.0 panics on cluster b",
                     canary, [(h, "app-panic", "app-panic") for h in b])

    def simultaneous(self):
        x = self.rng.choice(self.clusters["a"])
        y = self.rng.choice(self.clusters["c"])
        t0 = 3000.0 + self.rng.uniform(0, 10)
        self.repeat(x, t0, t0 + 300, 15, 25, "ERROR write /data/db/wal: No space left on device")
        self.repeat(y, t0 + self.rng.uniform(0, 30), t0 + 120, 30, 50,
                    "kernel: order-worker[%d]: segfault at 0 ip 00007f3a1c2b4e10 "
                    "sp 00007ffd3c8e9a40 error 4 in libssl.so.3" % self.rng.randrange(1000, 60000))
        self.problem("disk-full", "simultaneous", "disk full on %s" % x, x,
                     [(x, "disk-full", "disk-full")])
        self.problem("segfault", "simultaneous", "segfault on %s" % y, y,
                     [(y, "segfault", "segfault")])

    def flapping_link(self):
        peers = self.clusters["c"][:3]
        t = 1800.0
        while t < 3600:
            self.emit("lb-01", t, "bond0: link status definitely down for interface eth1, disabling it")
            up = t + self.rng.uniform(20, 60)
            for h in peers:
                for _ in range(self.rng.randrange(1, 4)):
                    self.emit(h, self.rng.uniform(t + 1, up),
                              "ERROR upstream lb-01:443 connection reset")
            self.emit("lb-01", up, "bond0: link status definitely up for interface eth1, 1000 Mbps full duplex")
            t = up + self.rng.uniform(120, 300)
        self.problem("flapping-link", "flap", "lb-01 eth1 flapping", "lb-01",
                     [("lb-01", "link-down", "link-down")] +
                     [(h, "upstream", "upstream:lb-01") for h in peers])

    def cascade(self):
        t0 = 3400.0
        self.repeat("db-01", t0, t0 + 400, 10, 20,
                    lambda: "postgres[%d]: PANIC: could not write to file "
                    "\"pg_wal/xlogtemp.%d\": No space left on device" % (
                        self.rng.randrange(100, 9999), self.rng.randrange(100, 9999)))
        self.repeat("queue-01", t0 + self.rng.uniform(5, 20), t0 + 420, 5, 12,
                    "ERROR upstream db-01:5432 connection refused")
        victims = self.clusters["a"] + self.clusters["b"]
        for h in victims:
            self.repeat(h, t0 + self.rng.uniform(30, 90), t0 + 450, 5, 15,
                        "ERROR connect to queue-01:5672 timed out")
        self.problem("cascade", "cascade",
                     "db-01 disk full; queue-01 refused by it; its clients time out",
                     "db-01",
                     [("db-01", "db-fatal", "db-fatal"),
                      ("queue-01", "upstream", "upstream:db-01")] +
                     [(h, "upstream", "upstream:queue-01") for h in victims])

    def build(self):
        self.background()
        self.noise()
        self.dependency_outage()
        self.creep()
        self.bad_deploy()
        self.simultaneous()
        self.flapping_link()
        self.cascade()


def classify(text):
    """The rule a line's text (after the host) matches, or None: the
    same regexes as the agent's, in Python's spelling, in order."""
    import re
    for name, rx, _sev, _fp in RULES:
        if re.match(rx.replace("(?<", "(?P<"), text):
            return name
    return None


def agent_config(host, cluster, tail_path, collector, pki, state_dir):
    lines = [
        "collector: {address: %s}" % collector,
        "tls: {ca: %s/ca.crt, cert: %s/%s.crt, key: %s/%s.key}" % (pki, pki, host, pki, host),
        "state_dir: %s" % state_dir,
        "labels: {cluster: %s}" % cluster,
        "files:",
        "  - path: %s" % tail_path,
        "    rules:",
    ]
    for name, rx, sev, fp in RULES:
        item = "      - {name: %s, match: '%s', severity: %s, time: {field: ts}" % (
            name, PFX + rx, sev)
        if fp:
            item += ", fingerprint: '%s'" % fp
        lines.append(item + "}")
    return "\n".join(lines) + "\n"


def generate(out, seed=1, hosts=20, start=DEFAULT_START, collector="127.0.0.1:7400",
             pki=None, state=None, tail_dir=None):
    """Write OUT/logs/HOST.log, OUT/agents/HOST.yaml and OUT/ground.json;
    returns the ground truth (a dict, as written)."""
    sc = Scenario(seed, hosts)
    sc.build()
    pki = pki or os.path.join(out, "pki")
    state = state or os.path.join(out, "state")
    tail_dir = tail_dir or os.path.join(out, "logs")
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    os.makedirs(os.path.join(out, "agents"), exist_ok=True)
    cluster_of = {h: "infra" for h in INFRA}
    for c, hs in sc.clusters.items():
        for h in hs:
            cluster_of[h] = c
    events = {}
    problem_events = {}
    nlines = 0
    for h in sc.hosts:
        rows = sorted(sc.lines[h])
        ev = bad = 0
        with open(os.path.join(out, "logs", "%s.log" % h), "w") as f:
            for t, text in rows:
                f.write("%s %s %s\n" % (iso(start + t), h, text))
                rule = classify(text)
                if rule is not None:
                    ev += 1
                    bad += SEVERITY[rule] != "ok"
        nlines += len(rows)
        events[h] = ev
        problem_events[h] = bad
        with open(os.path.join(out, "agents", "%s.yaml" % h), "w") as f:
            f.write(agent_config(h, cluster_of[h], os.path.join(tail_dir, "%s.log" % h),
                                 collector, pki, os.path.join(state, h)))
    truth = {
        "seed": seed,
        "hosts": sc.hosts,
        "clusters": sc.clusters,
        "start": start,
        "span_s": SPAN_S,
        "lines": nlines,
        "events": sum(events.values()),
        "events_by_host": events,
        "problem_events_by_host": problem_events,
        "incidents": sum(len(p["incidents"]) for p in sc.problems),
        "problems": sc.problems,
    }
    with open(os.path.join(out, "ground.json"), "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
        f.write("\n")
    return truth


def truth_maps(truth):
    """(incident key -> true problem id, true problem id -> root host);
    an incident key is (host, fingerprint)."""
    of = {}
    root = {}
    for p in truth["problems"]:
        root[p["id"]] = p["root_cause"]
        for i in p["incidents"]:
            of[(i["host"], i["fingerprint"])] = p["id"]
    return of, root


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output directory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--start", type=int, default=DEFAULT_START,
                    help="epoch seconds of the scenario's first second")
    ap.add_argument("--collector", default="127.0.0.1:7400")
    ap.add_argument("--pki", help="directory of ca.crt and HOST.crt/.key")
    ap.add_argument("--state", help="parent of the agents' state_dirs")
    ap.add_argument("--tail-dir", help="where the agents tail HOST.log "
                    "(default: the generated logs, read at once)")
    a = ap.parse_args()
    t = generate(a.out, a.seed, a.hosts, a.start, a.collector, a.pki, a.state, a.tail_dir)
    print("%d hosts, %d lines, %d events, %d incidents in %d true problems -> %s"
          % (len(t["hosts"]), t["lines"], t["events"], t["incidents"],
             len(t["problems"]), a.out))


if __name__ == "__main__":
    main()
