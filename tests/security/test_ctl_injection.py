#!/usr/bin/env python3
"""SQL injection through tocsinctl's filters and free text (docs/security.md,
"The collector admin's tools"): every value an operator types, or pastes
from an event, reaches SQLite as a bound parameter, never as SQL. A filter
that tries to widen itself matches nothing; text that tries to end the
statement is stored as the text it is; the tables are intact afterwards."""

import json

import tocsin_e2e as e2e

HOSTILE = [
    "x' OR '1'='1",
    "x\" OR \"1\"=\"1",
    "web-01' --",
    "'; DROP TABLE events; --",
    "web-01%",
    "*",
]


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_filters_and_text_are_parameters(env):
    env.make_pki(agents=("web-01",))
    log = env.write("logs/app.log", "")
    env.collector_config()
    col = env.collector().start()
    col.wait_log("listening on")
    conf = env.agent_config("web-01", [(log, [("app-error", "ERROR (?<detail>.*)", "error")])])
    env.agent(conf).start()
    append(log, "ERROR one\nERROR two\n")
    e2e.wait_for(lambda: len(env.events()) == 2, 30, "2 events")
    e2e.wait_for(lambda: json.loads(env.ctl("incidents", "list", "--json")), 30, "an incident")

    for h in HOSTILE:
        evs = json.loads(env.ctl("events", "list", "--json", "--limit", "0", "--host", h))
        e2e.check(evs == [], "events list --host %r matched %d events" % (h, len(evs)))
        incs = json.loads(env.ctl("incidents", "list", "--json", "--host", h))
        e2e.check(incs == [], "incidents list --host %r matched %r" % (h, incs))
        # A bad enumerated value is refused with an error, not run.
        env.run([e2e.CTL, "-c", env.collector_conf, "incidents", "list", "--state", h],
                expect=None)
        env.run([e2e.CTL, "-c", env.collector_conf, "incidents", "list", "--priority", h],
                expect=None)

    # Free text is stored literally: a silence whose matcher and comment
    # are SQL, and a note.
    # Matchers may not hold spaces; SQL does not need them.
    sql_matcher = "';DROP/**/TABLE/**/events;--"
    env.ctl("silences", "add", "--match", "host=" + sql_matcher, "--duration", "1h",
            "--comment", HOSTILE[0], "--user", HOSTILE[2])
    sil = json.loads(env.ctl("silences", "list", "--json"))
    e2e.check(len(sil) == 1, "silences: %r" % sil)
    text = json.dumps(sil[0])
    for s in (HOSTILE[0], HOSTILE[2], sql_matcher):
        e2e.check(json.dumps(s)[1:-1] in text, "%r not stored literally: %s" % (s, text))
    inc = json.loads(env.ctl("incidents", "list", "--json"))[0]
    env.ctl("incidents", "note", str(inc["id"]), HOSTILE[3], "--user", HOSTILE[0])
    shown = env.ctl("incidents", "show", str(inc["id"]), "--json")
    e2e.check(json.dumps(HOSTILE[3])[1:-1] in shown, "note not stored literally: %s" % shown)
    # An id that is SQL is refused as an id.
    env.run([e2e.CTL, "-c", env.collector_conf, "incidents", "show", "1 OR 1=1"], expect=2)

    # Nothing was dropped or widened: both events and the incident remain,
    # and the silence did not match the real host.
    e2e.check(len(env.events()) == 2, "events changed: %r" % env.events())
    e2e.check(len(env.events("web-01")) == 2, "host filter broken after the attempts")
    incs = json.loads(env.ctl("incidents", "list", "--json"))
    e2e.check(len(incs) == 1 and not incs[0].get("silenced"), "incidents: %r" % incs)


if __name__ == "__main__":
    e2e.main([test_filters_and_text_are_parameters])
