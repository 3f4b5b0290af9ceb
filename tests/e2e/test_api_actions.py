#!/usr/bin/env python3
"""Operator actions through the HTTP API (docs/api.md, "Actions"): an
operator token acknowledges, notes and resolves an incident, and acts on
a problem, over real TLS; each answer is 202 with the recorded action's
id; tocsinctl then shows the action on the timeline under the token's
name, exactly as if tocsinctl had recorded it; and tocsinctl replay
rebuilds the same incidents from the stored inputs."""

import json

import tocsin_e2e as e2e
from test_api import HOSTS, append, ctl_json, start, token


def show(env, iid):
    return ctl_json(env, "incidents", "show", str(iid))


def test_actions(env):
    col, api, logs = start(env)
    oncall = token(env, "oncall", "operator")
    append(logs["web-01"], "err1 disk on fire")
    for h in HOSTS:
        append(logs[h], "certificate expired for api")
    e2e.wait_for(lambda: len(ctl_json(env, "incidents", "list")) == 4, 30,
                 "four incidents")
    e2e.wait_for(lambda: len(ctl_json(env, "problems", "list")) == 1, 30,
                 "the problem")
    iid = [i for i in ctl_json(env, "incidents", "list")
           if i["rule"] == "r1"][0]["id"]

    # Ack with a comment: 202, the action's id; then in the store.
    st, doc, r = api.call("/api/v1/incidents/%d/ack" % iid, oncall, "POST",
                          {"Content-Type": "application/json"},
                          json.dumps({"text": "looking"}))
    e2e.check(st == 202 and doc["action"] > 0 and doc["incident"] == iid
              and doc["verb"] == "ack" and doc["user"] == "oncall"
              and doc["state"] == "recorded"
              and r.getheader("Content-Type") == "application/json",
              "%s %r" % (st, doc))
    e2e.wait_for(lambda: show(env, iid)["state"] == "acknowledged", 20,
                 "the ack applied")
    out = env.ctl("incidents", "show", str(iid))
    e2e.check("acknowledged" in out and "oncall" in out, out)
    whats = [(t["what"], t["who"]) for t in show(env, iid)["timeline"]]
    e2e.check(("acknowledged", "user:oncall") in whats, repr(whats))

    # A note (no body is accepted for ack/resolve too).
    st, doc, _ = api.call("/api/v1/incidents/%d/note" % iid, oncall, "POST",
                          body=json.dumps({"text": "rebooting db-1"}))
    e2e.check(st == 202, repr(doc))
    e2e.wait_for(lambda: any(t["who"] == "user:oncall"
                             and t.get("detail") == "rebooting db-1"
                             for t in show(env, iid)["timeline"]), 20,
                 "the note on the timeline")
    st, doc, _ = api.call("/api/v1/incidents/%d/resolve" % iid, oncall, "POST")
    e2e.check(st == 202, repr(doc))
    e2e.wait_for(lambda: show(env, iid)["state"] == "resolved", 20,
                 "the resolve applied")
    # The API's own read agrees.
    st, doc, _ = api.call("/api/v1/incidents/%d" % iid, oncall)
    e2e.check(st == 200 and doc["state"] == "resolved", repr(doc))

    # A problem action: investigate, then a note.
    pid = ctl_json(env, "problems", "list")[0]["id"]
    st, doc, _ = api.call("/api/v1/problems/%d/investigate" % pid, oncall,
                          "POST")
    e2e.check(st == 202 and doc["problem"] == pid, repr(doc))
    st, doc, _ = api.call("/api/v1/problems/%d/note" % pid, oncall, "POST",
                          body=json.dumps({"text": "cert rotation"}))
    e2e.check(st == 202, repr(doc))
    e2e.wait_for(lambda: ctl_json(env, "problems", "show", str(pid))["state"]
                 == "investigating", 20, "the problem investigated")
    pshow = ctl_json(env, "problems", "show", str(pid))
    e2e.check("oncall" in json.dumps(pshow["timeline"])
              and "cert rotation" in json.dumps(pshow["timeline"]),
              repr(pshow["timeline"]))

    # No such incident: 404 at once, nothing recorded.
    st, doc, _ = api.call("/api/v1/incidents/99999/ack", oncall, "POST")
    e2e.check(st == 404 and doc == {"error": "no incident 99999",
                                     "status": 404}, repr(doc))

    # An action the engine refuses (ack of a resolved incident) is still
    # recorded (202); tocsinctl's view is unchanged.
    st, doc, _ = api.call("/api/v1/incidents/%d/ack" % iid, oncall, "POST")
    e2e.check(st == 202, repr(doc))

    # Replay: the API's actions are inputs like tocsinctl's.
    rep = json.loads(env.ctl("replay", "--json"))
    e2e.check(rep["identical"] and rep["actions"] >= 5
              and not rep["differences"], repr(rep))
    env.ctl("replay")


if __name__ == "__main__":
    e2e.main([test_actions])
