#!/usr/bin/env python3
"""Unit tests of tests/scenarios/generate.py: the same seed gives the
same bytes, another seed another scenario, and the ground truth agrees
with the logs (every true incident's host has a line its rule matches
with the fingerprint the truth names, and the counted events are the
lines a rule matches)."""

import filecmp
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402


def files_of(d):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.relpath(os.path.join(root, n), d) for n in names]
    return sorted(out)


class Generate(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tocsin-scen-unit-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def gen(self, name, **kw):
        out = os.path.join(self.dir, name)
        return out, generate.generate(out, **kw)

    def test_deterministic(self):
        a, ta = self.gen("a", seed=7, hosts=14)
        b, tb = self.gen("b", seed=7, hosts=14, pki=os.path.join(a, "pki"),
                         state=os.path.join(a, "state"), tail_dir=os.path.join(a, "logs"))
        self.assertEqual(ta, tb)
        self.assertEqual(files_of(a), files_of(b))
        for f in files_of(a):
            self.assertTrue(filecmp.cmp(os.path.join(a, f), os.path.join(b, f),
                                        shallow=False), f)

    def test_seed_changes_scenario(self):
        a, ta = self.gen("a", seed=1, hosts=14)
        b, tb = self.gen("b", seed=2, hosts=14)
        self.assertNotEqual(ta["events"], tb["events"])
        with open(os.path.join(a, "logs", "app-a-01.log")) as fa, \
                open(os.path.join(b, "logs", "app-a-01.log")) as fb:
            self.assertNotEqual(fa.read(), fb.read())

    def test_truth_matches_logs(self):
        for hosts in (13, 14, 31):
            out, t = self.gen("h%d" % hosts, seed=3, hosts=hosts)
            self.assertEqual(len(t["hosts"]), hosts)
            rules = [(n, re.compile(generate.PFX.replace("(?<", "(?P<") +
                                    rx.replace("(?<", "(?P<")), sev, fp)
                     for n, rx, sev, fp in generate.RULES]
            seen = set()  # (host, fingerprint) of non-ok events
            events = {}
            for h in t["hosts"]:
                events[h] = 0
                prev = ""
                with open(os.path.join(out, "logs", "%s.log" % h)) as f:
                    for line in f:
                        ts = line.split(" ", 1)[0]
                        self.assertGreaterEqual(ts, prev)  # in time order
                        prev = ts
                        self.assertEqual(line.split(" ")[1], h)
                        for n, rx, sev, fp in rules:
                            m = rx.match(line)
                            if not m:
                                continue
                            events[h] += 1
                            if sev != "ok":
                                key = fp.replace("{rule}", n).replace(
                                    "{peer}", m.group("peer")) if fp else n
                                seen.add((h, key))
                            break
            self.assertEqual(events, t["events_by_host"])
            truth_keys = {(i["host"], i["fingerprint"])
                          for p in t["problems"] for i in p["incidents"]}
            # Exactly the incidents the engine can open: host + fingerprint.
            self.assertEqual(seen, truth_keys)
            self.assertEqual(len(truth_keys), t["incidents"])
            with open(os.path.join(out, "ground.json")) as f:
                self.assertEqual(json.load(f), json.loads(json.dumps(t)))

    def test_agent_config_names_its_host(self):
        out, t = self.gen("c", seed=1, hosts=13, collector="127.0.0.1:9999")
        with open(os.path.join(out, "agents", "lb-01.yaml")) as f:
            text = f.read()
        self.assertIn("collector: {address: 127.0.0.1:9999}", text)
        self.assertIn("/lb-01.crt", text)
        self.assertIn("lb-01.log", text)
        self.assertEqual(text.count("time: {field: ts}"), len(generate.RULES))

    def test_too_few_hosts(self):
        with self.assertRaises(ValueError):
            generate.fleet(generate.MIN_HOSTS - 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
