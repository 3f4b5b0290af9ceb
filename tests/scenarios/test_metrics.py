#!/usr/bin/env python3
"""Unit tests of tests/scenarios/metrics.py on hand-made groupings whose
answers are worked out by hand in the comments."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics  # noqa: E402


class Pairwise(unittest.TestCase):
    def test_perfect(self):
        truth = {1: "A", 2: "A", 3: "A", 4: "B", 5: "B", 6: "C"}
        pred = {1: "x", 2: "x", 3: "x", 4: "y", 5: "y", 6: "z"}
        m = metrics.pairwise(pred, truth)
        # True pairs: C(3,2) + C(2,2) = 4, all found.
        self.assertEqual((m["tp"], m["fp"], m["fn"]), (4, 0, 0))
        self.assertEqual((m["precision"], m["recall"], m["f1"]), (1.0, 1.0, 1.0))

    def test_all_singletons_is_the_baseline(self):
        truth = {1: "A", 2: "A", 3: "A", 4: "B", 5: "B"}
        pred = {i: ("incident", i) for i in truth}
        m = metrics.pairwise(pred, truth)
        # Nothing claimed: precision 1 by convention, recall 0/4, F1 0.
        self.assertEqual((m["tp"], m["fp"], m["fn"]), (0, 0, 4))
        self.assertEqual((m["precision"], m["recall"], m["f1"]), (1.0, 0.0, 0.0))

    def test_everything_in_one_group(self):
        truth = {1: "A", 2: "A", 3: "B", 4: "B"}
        pred = {i: "all" for i in truth}
        m = metrics.pairwise(pred, truth)
        # C(4,2) = 6 predicted pairs, 2 of them true (1-2, 3-4).
        self.assertEqual((m["tp"], m["fp"], m["fn"]), (2, 4, 0))
        self.assertAlmostEqual(m["precision"], 1 / 3)
        self.assertEqual(m["recall"], 1.0)
        self.assertAlmostEqual(m["f1"], 0.5)  # 2 * (1/3) * 1 / (4/3)

    def test_split_and_merge(self):
        # Truth A = {1,2,3,4}, B = {5,6}. Prediction x = {1,2}, y = {3,4,5},
        # z = {6}. TP: 1-2, 3-4 = 2. Predicted pairs: 1 + 3 = 4, so FP 2
        # (3-5, 4-5). True pairs: 6 + 1 = 7, so FN 5.
        truth = {1: "A", 2: "A", 3: "A", 4: "A", 5: "B", 6: "B"}
        pred = {1: "x", 2: "x", 3: "y", 4: "y", 5: "y", 6: "z"}
        m = metrics.pairwise(pred, truth)
        self.assertEqual((m["tp"], m["fp"], m["fn"]), (2, 2, 5))
        self.assertAlmostEqual(m["precision"], 0.5)
        self.assertAlmostEqual(m["recall"], 2 / 7)
        self.assertAlmostEqual(m["f1"], 2 * 0.5 * (2 / 7) / (0.5 + 2 / 7))

    def test_missing_prediction_is_alone(self):
        truth = {1: "A", 2: "A", 3: "A"}
        pred = {1: "x", 2: "x"}  # 3 not predicted at all
        m = metrics.pairwise(pred, truth)
        self.assertEqual((m["tp"], m["fp"], m["fn"]), (1, 0, 2))

    def test_no_pairs_anywhere_is_perfect(self):
        truth = {1: "A", 2: "B"}
        pred = {1: "x", 2: "y"}
        m = metrics.pairwise(pred, truth)
        self.assertEqual((m["precision"], m["recall"], m["f1"]), (1.0, 1.0, 1.0))

    def test_group_names_do_not_matter(self):
        truth = {1: "A", 2: "A", 3: "B"}
        a = metrics.pairwise({1: 7, 2: 7, 3: 8}, truth)
        b = metrics.pairwise({1: "q", 2: "q", 3: ("z", 1)}, truth)
        self.assertEqual(a, b)


class Top1(unittest.TestCase):
    truth = {1: "A", 2: "A", 3: "A", 4: "B", 5: "B", 6: "C"}
    truth_root = {"A": "cache-01", "B": "lb-01", "C": "app-03"}

    def test_right_and_wrong(self):
        pred = {1: "p1", 2: "p1", 3: "p1", 4: "p2", 5: "p2", 6: "p3"}
        roots = {"p1": "cache-01", "p2": "app-02", "p3": "app-03"}
        m = metrics.top1(pred, roots, self.truth, self.truth_root)
        # C has one incident: not evaluated. A right, B wrong.
        self.assertEqual((m["correct"], m["evaluated"]), (1, 2))
        self.assertEqual(m["accuracy"], 0.5)
        self.assertEqual(m["misses"], [("B", "lb-01", "app-02")])

    def test_singletons_name_no_root(self):
        pred = {i: ("incident", i) for i in self.truth}
        m = metrics.top1(pred, {}, self.truth, self.truth_root)
        self.assertEqual((m["correct"], m["evaluated"], m["accuracy"]),
                         (0, 2, 0.0))

    def test_largest_overlap_wins(self):
        # A's items: two in p2, one in p1. p2 names the right host.
        pred = {1: "p1", 2: "p2", 3: "p2", 4: "p3", 5: "p3", 6: "p3"}
        roots = {"p1": "app-09", "p2": "cache-01", "p3": "lb-01"}
        m = metrics.top1(pred, roots, self.truth, self.truth_root)
        self.assertEqual((m["correct"], m["evaluated"]), (2, 2))

    def test_tie_takes_smallest_key(self):
        truth = {1: "A", 2: "A"}
        pred = {1: "p2", 2: "p1"}
        m = metrics.top1(pred, {"p1": "h1", "p2": "h2"}, truth, {"A": "h1"})
        self.assertEqual(m["correct"], 1)
        m = metrics.top1(pred, {"p1": "h2", "p2": "h1"}, truth, {"A": "h1"})
        self.assertEqual(m["correct"], 0)

    def test_nothing_to_evaluate(self):
        m = metrics.top1({1: "x"}, {"x": "h"}, {1: "A"}, {"A": "h"})
        self.assertIsNone(m["accuracy"])
        self.assertEqual(m["evaluated"], 0)


class Reduction(unittest.TestCase):
    def test_values(self):
        self.assertAlmostEqual(metrics.reduction(1000, 10), 0.99)
        self.assertAlmostEqual(metrics.reduction(4, 4), 0.0)
        self.assertEqual(metrics.reduction(0, 0), 0.0)
        self.assertAlmostEqual(metrics.reduction(200000, 13), 1 - 13 / 200000)


class GroupsOf(unittest.TestCase):
    def test_problems_and_unlinked(self):
        problems = [
            {"id": 2, "incidents": [3, 4], "root_cause": "lb-01"},
            {"id": 1, "incidents": [1, 2, 9], "root_cause": None},
        ]
        pred, roots, n, conflicts = metrics.groups_of([1, 2, 3, 4, 5], problems)
        self.assertEqual(pred[1], ("problem", 1))
        self.assertEqual(pred[3], ("problem", 2))
        self.assertEqual(pred[5], ("incident", 5))
        self.assertEqual(roots, {("problem", 1): None, ("problem", 2): "lb-01"})
        self.assertEqual(n, 3)  # two problems + incident 5
        self.assertEqual(conflicts, [])

    def test_no_problems_is_one_group_each(self):
        pred, roots, n, _ = metrics.groups_of([7, 8], [])
        self.assertEqual(pred, {7: ("incident", 7), 8: ("incident", 8)})
        self.assertEqual((roots, n), ({}, 2))

    def test_problem_without_known_incidents_still_counts(self):
        # Problem 3 holds only an incident the listing does not know:
        # still one more thing for an operator to read.
        problems = [{"id": 1, "incidents": [1], "root_cause": "a"},
                    {"id": 3, "incidents": [99], "root_cause": "b"}]
        _, _, n, _ = metrics.groups_of([1, 2], problems)
        self.assertEqual(n, 3)

    def test_incident_in_two_problems_is_a_conflict(self):
        problems = [{"id": 1, "incidents": [1], "root_cause": "a"},
                    {"id": 2, "incidents": [1, 2], "root_cause": "b"}]
        pred, _, n, conflicts = metrics.groups_of([1, 2], problems)
        self.assertEqual(pred[1], ("problem", 1))
        self.assertEqual(conflicts, [(1, 1, 2)])
        self.assertEqual(n, 2)


class Evaluate(unittest.TestCase):
    """run.evaluate on listings made by hand from a generated truth: the
    path taken once `tocsinctl problems list` exists is tested before
    it does."""

    def setUp(self):
        import shutil
        import tempfile
        import generate
        import run
        self.run = run
        d = tempfile.mkdtemp(prefix="tocsin-scen-unit-")
        try:
            self.truth = generate.generate(d, seed=5, hosts=14)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        self.incidents = []
        for p in self.truth["problems"]:
            for i in p["incidents"]:
                self.incidents.append({"id": len(self.incidents) + 1, "kind": "log",
                                       "host": i["host"], "fingerprint": i["fingerprint"],
                                       "problem_truth": p["id"]})
        self.events = dict(self.truth["events_by_host"])

    def problems(self, root=lambda p: p["root_cause"]):
        out = []
        for n, p in enumerate(self.truth["problems"]):
            ids = [i["id"] for i in self.incidents if i["problem_truth"] == p["id"]]
            if len(ids) > 1:
                out.append({"id": n + 1, "incidents": ids, "root_cause": root(p)})
        return out

    def test_perfect_problems(self):
        r = self.run.evaluate(self.truth, self.incidents, self.problems(), self.events)
        self.assertEqual((r["precision"], r["recall"], r["f1"], r["top1"]),
                         (1.0, 1.0, 1.0, 1.0))
        self.assertEqual(r["groups"], len(self.truth["problems"]))
        self.assertAlmostEqual(r["reduction"], r["reduction_ideal"])
        self.assertEqual((r["missing"], r["unexpected"]), ([], []))

    def test_incident_problem_field_must_agree(self):
        probs = self.problems()
        for i in self.incidents:
            i["problem"] = None
        r = self.run.evaluate(self.truth, self.incidents, probs, self.events)
        linked = sorted(x for p in probs for x in p["incidents"])
        self.assertEqual(r["link_mismatch"], linked)
        of = {x: p["id"] for p in probs for x in p["incidents"]}
        for i in self.incidents:
            i["problem"] = of.get(i["id"])
        r = self.run.evaluate(self.truth, self.incidents, probs, self.events)
        self.assertEqual(r["link_mismatch"], [])

    def test_wrong_roots(self):
        r = self.run.evaluate(self.truth, self.incidents,
                              self.problems(lambda p: "nobody"), self.events)
        self.assertEqual((r["f1"], r["top1"]), (1.0, 0.0))
        # A recurring class (trend) names no root: not evaluated.
        rooted = [p for p in self.truth["problems"]
                  if len(p["incidents"]) > 1 and p["root_cause"] is not None]
        self.assertEqual(r["top1_evaluated"], len(rooted))

    def test_baseline(self):
        r = self.run.evaluate(self.truth, self.incidents, None, self.events)
        self.assertFalse(r["problems_command"])
        self.assertEqual((r["precision"], r["recall"], r["f1"], r["top1"]),
                         (1.0, 0.0, 0.0, 0.0))
        self.assertEqual(r["groups"], len(self.incidents))
        self.assertAlmostEqual(r["reduction"], 1 - len(self.incidents) / sum(self.events.values()))

    def test_missing_and_unexpected(self):
        inc = self.incidents[1:] + [{"id": 999, "kind": "log", "host": "lb-01",
                                     "fingerprint": "disk-full"},
                                    {"id": 1000, "kind": "agent", "host": "lb-01",
                                     "fingerprint": "agent-silent"}]
        r = self.run.evaluate(self.truth, inc, [], self.events)
        first = self.incidents[0]
        self.assertEqual(r["missing"], [[first["host"], first["fingerprint"]]])
        self.assertEqual(r["unexpected"], [{"id": 999, "host": "lb-01",
                                            "fingerprint": "disk-full"}])
        self.assertEqual(r["incidents"], len(self.incidents))  # agent one not counted


if __name__ == "__main__":
    unittest.main(verbosity=2)
