"""Correlation quality metrics (issue 11 item 8): pure functions, no I/O.

A grouping is a dict item -> group key (items are incident ids; a group
is a problem, or an incident that no problem holds, alone in its own
group). The ground truth is a grouping of the same items into the true
problems. The measures:

- pairwise precision, recall and F1: over all unordered pairs of items,
  a pair is a true positive when both groupings put its two items
  together, a false positive when only the prediction does, a false
  negative when only the truth does. With no predicted pair, precision
  is 1.0 (nothing claimed, nothing wrong); with no true pair, recall is
  1.0. F1 is their harmonic mean (0.0 when both are 0).
- root-cause top-1 accuracy: for every true problem of two or more
  items that names a root-cause host, the predicted group holding most
  of its items (ties: the smallest group key) must name the same host.
  An item alone in its group names no root cause, so an ungrouped
  problem is a miss: correlation has to name the cause, not guess it.
- reduction: 1 - groups / events, where groups = problems + unlinked
  incidents; what an operator reads instead of the raw events.

Pairs are counted from group sizes (sum of C(n, 2) over the cells of
the contingency table), so a fleet of thousands of incidents costs
nothing.
"""

from collections import Counter


def _pairs(n):
    return n * (n - 1) // 2


def pair_counts(pred, truth):
    """(tp, fp, fn) over unordered pairs of the items of TRUTH. An item
    missing from PRED is alone in its own predicted group."""
    items = sorted(truth, key=repr)
    pred_sizes = Counter()
    truth_sizes = Counter()
    cells = Counter()
    for it in items:
        p = pred.get(it, ("__alone__", it))
        t = truth[it]
        pred_sizes[p] += 1
        truth_sizes[t] += 1
        cells[(p, t)] += 1
    tp = sum(_pairs(n) for n in cells.values())
    pred_pairs = sum(_pairs(n) for n in pred_sizes.values())
    true_pairs = sum(_pairs(n) for n in truth_sizes.values())
    return tp, pred_pairs - tp, true_pairs - tp


def pairwise(pred, truth):
    """{'precision', 'recall', 'f1', 'tp', 'fp', 'fn'}; see the module
    comment for the conventions when there is no pair."""
    tp, fp, fn = pair_counts(pred, truth)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp,
            "fn": fn}


def top1(pred, pred_root, truth, truth_root):
    """Root-cause top-1 accuracy.

    pred: item -> predicted group; pred_root: predicted group -> host
    named as root cause (absent or None: none named). truth: item ->
    true problem; truth_root: true problem -> true root-cause host.
    Returns {'accuracy', 'correct', 'evaluated', 'misses'}; accuracy is
    None when no true problem qualifies (two or more items and a root).
    misses lists (true problem, expected host, named host)."""
    members = {}
    for it, t in truth.items():
        members.setdefault(t, []).append(it)
    correct = 0
    evaluated = 0
    misses = []
    for t in sorted(members, key=repr):
        items = members[t]
        want = truth_root.get(t)
        if len(items) < 2 or want is None:
            continue
        evaluated += 1
        overlap = Counter(pred.get(it, ("__alone__", it)) for it in items)
        best = sorted(overlap.items(), key=lambda kv: (-kv[1], repr(kv[0])))[0][0]
        got = pred_root.get(best)
        if got == want:
            correct += 1
        else:
            misses.append((t, want, got))
    acc = correct / evaluated if evaluated else None
    return {"accuracy": acc, "correct": correct, "evaluated": evaluated,
            "misses": misses}


def reduction(events, groups):
    """1 - groups / events (0.0 with no events): the share of the raw
    events an operator no longer has to read one by one."""
    if events <= 0:
        return 0.0
    return 1.0 - groups / events


def groups_of(incident_ids, problems):
    """The predicted grouping from a problem listing.

    incident_ids: every incident id; problems: a list of dicts with 'id',
    'incidents' (ids) and 'root_cause' (host or None), as `tocsinctl
    problems list --json` gives them. Returns (pred, pred_root, ngroups,
    conflicts): an incident in no problem is its own group ('incident',
    id); one listed by two problems stays in the first (lowest id) and
    is reported in conflicts, since an incident has at most one
    problem. ngroups = problems + incidents in no problem."""
    pred = {}
    pred_root = {}
    conflicts = []
    known = set(incident_ids)
    for pr in sorted(problems, key=lambda p: p["id"]):
        key = ("problem", pr["id"])
        pred_root[key] = pr.get("root_cause")
        for iid in pr.get("incidents") or []:
            if iid not in known:
                continue
            if iid in pred:
                conflicts.append((iid, pred[iid][1], pr["id"]))
                continue
            pred[iid] = key
    unlinked = 0
    for iid in incident_ids:
        if iid not in pred:
            pred[iid] = ("incident", iid)
            unlinked += 1
    # Every problem is read once, even one whose incidents are unknown.
    ngroups = len(problems) + unlinked
    return pred, pred_root, ngroups, conflicts
