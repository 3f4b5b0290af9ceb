#!/usr/bin/env python3
"""The dashboard in a real browser (docs/dashboard.md): Debian's headless
Chromium driven through chromedriver's WebDriver (plain HTTP JSON, so
urllib) against a real collector fed by real agents. The page asks for a
token, shows the incidents by priority, a click on Ack acknowledges one
(in the store, by the token's name, and then on the page); a hostile log
line shown as an incident's title stays text. The static files come
with the security headers, and nothing outside the fixed list is
served. Screenshots of the main pages go to BUILD/screenshots/."""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import tocsin_e2e as e2e
from test_api import Api, append, ctl_json, token

HOSTS = ("web-01", "web-02", "web-03")
HOSTILE = "<img src=x onerror=document.body.dataset.pwned=1>"
ELEM = "element-6066-11e4-a52e-4f66cafe4a60"


class Driver:
    """A WebDriver session over chromedriver's HTTP JSON."""

    def __init__(self, env):
        self.port = e2e.free_port()
        self.log = open(os.path.join(env.dir, "chromedriver.log"), "w")
        self.proc = subprocess.Popen(["chromedriver", "--port=%d" % self.port],
                                     stdout=self.log, stderr=self.log)
        self.base = "http://127.0.0.1:%d" % self.port
        e2e.wait_for(self.ready, 30, "chromedriver")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "acceptInsecureCerts": True,
            "goog:chromeOptions": {
                "binary": shutil.which("chromium") or "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,768",
                         "--user-data-dir=" + os.path.join(env.dir, "chrome")]},
        }}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]

    def ready(self):
        try:
            return self.call("GET", "/status")["ready"]
        except (OSError, urllib.error.URLError):
            return False

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise e2e.TestFailure("webdriver %s %s: %s" % (method, path,
                                                         e.read()[:500]))

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.sid, path), body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script,
                                                "args": list(args)})

    def find(self, css):
        v = self.s("POST", "/element", {"using": "css selector",
                                        "value": css})
        return v.get(ELEM) or v.get("ELEMENT") or list(v.values())[0]

    def click(self, css):
        self.s("POST", "/element/%s/click" % self.find(css), {})

    def type(self, css, text):
        self.s("POST", "/element/%s/value" % self.find(css), {"text": text})

    def shot(self, name):
        d = os.path.join(e2e.BUILD, "screenshots")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, name + ".png")
        with open(p, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))
        print("screenshot: %s" % p)

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]);"
                       "return e ? e.textContent : null;", css)

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def start(env):
    env.make_pki(agents=HOSTS)
    port = e2e.free_port()
    env.collector_config("api: {listen: 127.0.0.1:%d, dashboard_dir: %s}\n"
                         % (port, os.path.join(e2e.BUILD, "dashboard")))
    api = Api(env, port)
    col = env.collector().start()
    col.wait_log("api: dashboard from")
    col.wait_log("api: listening on")
    logs = {}
    for h in HOSTS:
        logs[h] = env.write("logs/%s.log" % h, "")
        rules = [("disk", "disk full", "critical"),
                 ("tls-expired", "certificate expired", "warning"),
                 # The captured text becomes the incident's fingerprint,
                 # shown as its title: a hostile log line reaches the page.
                 ("boom", "boom (?P<what>.*)', fingerprint: '{what}",
                  "error")]
        env.agent(env.agent_config(h, [(logs[h], rules)])).start()
    return col, api, logs


def get(api, path):
    c = api.conn()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r, body


def test_static(env):
    """The files, their types and headers; only the fixed list."""
    col, api, logs = start(env)
    csp = None
    for path, ctype in (("/", "text/html"), ("/index.html", "text/html"),
                        ("/app.js?v=1", "text/javascript"),
                        ("/style.css", "text/css"),
                        ("/static/chart.js", "text/javascript")):
        st, r, body = get(api, path)
        if path == "/static/chart.js" and not os.path.exists(
                "/usr/share/javascript/chart.js/chart.min.js"):
            e2e.check(st == 404, "chart.js without libjs-chart.js: %s" % st)
            continue
        e2e.check(st == 200 and r.getheader("Content-Type").startswith(ctype)
                  and r.getheader("X-Content-Type-Options") == "nosniff"
                  and r.getheader("X-Frame-Options") == "DENY"
                  and body, "%s: %s %r" % (path, st, r.getheaders()))
        csp = r.getheader("Content-Security-Policy")
        e2e.check(csp and "script-src 'self'" in csp and "unsafe" not in csp
                  and "default-src 'none'" in csp, repr(csp))
    # The page has no inline script or style for the CSP to block.
    page = get(api, "/")[2].decode()
    e2e.check("<script>" not in page and "style=" not in page
              and "onclick" not in page, "inline code in index.html")
    # Anything else is the API's JSON 404 (or 405), never a file.
    for path in ("/../../etc/passwd", "/%2e%2e/etc/passwd", "/static/",
                 "/static/../app.js", "/app.js/", "/dashboard/app.js",
                 "/index.html%00", "//app.js", "/APP.JS", "/meson.build"):
        st, r, body = get(api, path)
        e2e.check(st in (400, 404) and r.getheader("Content-Type")
                  == "application/json" and b"root:" not in body,
                  "%s: %s %r" % (path, st, body[:80]))
    st, doc, _ = api.call("/app.js", method="POST")
    e2e.check(st in (404, 405), "POST /app.js: %s" % st)
    # Data still needs a token.
    e2e.check(api.call("/api/v1/incidents")[0] == 401, "data without token")


def test_dashboard(env):
    if shutil.which("chromedriver") is None:
        e2e.skip("chromedriver is not installed (apt-get install chromium "
                 "chromium-driver)")
    col, api, logs = start(env)
    oncall = token(env, "oncall", "operator")
    append(logs["web-01"], "disk full on /var")
    append(logs["web-02"], "boom " + HOSTILE)
    for h in HOSTS:
        append(logs[h], "certificate expired for api")
    e2e.wait_for(lambda: len(ctl_json(env, "incidents", "list")) == 5, 30,
                 "five incidents")
    e2e.wait_for(lambda: len(ctl_json(env, "problems", "list")) == 1, 30,
                 "the problem")
    incs = ctl_json(env, "incidents", "list")
    disk = [i for i in incs if i["rule"] == "disk"][0]
    hostile = [i for i in incs if i["rule"] == "boom"][0]
    e2e.check(hostile["fingerprint"] == HOSTILE, repr(hostile))
    # A note with markup on the hostile incident's timeline too.
    env.ctl("incidents", "note", str(hostile["id"]), "<b>bold?</b> " + HOSTILE,
            "--user", "alice")
    pid = ctl_json(env, "problems", "list")[0]["id"]
    url = "https://127.0.0.1:%d/" % api.port

    d = Driver(env)
    try:
        d.go(url)
        e2e.wait_for(lambda: d.js("return !document.getElementById('login')"
                                  ".hidden;"), 20, "the login form")
        d.shot("login")
        d.type("#token", oncall)
        d.click("#login-form button")
        row = 'tr[data-id="%d"]' % disk["id"]
        e2e.wait_for(lambda: d.text(row), 20, "the incident on the page")
        e2e.wait_for(lambda: "operator" in d.text("#status"), 20,
                     "the operator role")
        # Priority order: the P1/P2 first.
        ids = d.js("return [...document.querySelectorAll('#incidents tbody tr')]"
                   ".map(r => +r.dataset.id);")
        prios = {i["id"]: i["priority"] for i in incs}
        e2e.check([prios[i] for i in ids] == sorted(prios[i] for i in ids)
                  and len(ids) == 5, repr(ids))
        e2e.check(d.text("#c-p1 .n") is not None, "counts")
        # The hostile title is text, not markup: no <img>, no handler ran.
        hrow = 'tr[data-id="%d"] td.title' % hostile["id"]
        e2e.check(HOSTILE in d.text(hrow), repr(d.text(hrow)))
        e2e.check(d.js("return document.querySelectorAll('main img').length;")
                  == 0 and d.js("return document.body.dataset.pwned;") is None,
                  "markup from a log line was rendered")
        d.shot("incidents")

        # Click Ack: in the store by the token's name, then on the page.
        d.click(row + ' button[data-act="ack"]')
        e2e.wait_for(lambda: ctl_json(env, "incidents", "show",
                                      str(disk["id"]))["state"]
                     == "acknowledged", 20, "the ack in the store")
        tl = ctl_json(env, "incidents", "show", str(disk["id"]))["timeline"]
        e2e.check(("acknowledged", "user:oncall") in
                  [(t["what"], t["who"]) for t in tl], repr(tl))
        e2e.wait_for(lambda: "acknowledged" in (d.text(row) or ""), 20,
                     "the ack on the page")
        e2e.check(not d.js("return !!document.querySelector(arguments[0]);",
                           row + ' button[data-act="ack"]'), "Ack still shown")
        d.shot("incidents-acked")

        # The other pages.
        d.go(url + "#incident/%d" % hostile["id"])
        e2e.wait_for(lambda: "Timeline" in (d.text("main") or ""), 20,
                     "the incident page")
        e2e.check("<b>bold?</b>" in d.text("table.timeline")
                  and d.js("return document.querySelectorAll('main img, main b')"
                           ".length;") == 0
                  and d.js("return document.body.dataset.pwned;") is None,
                  "the note's markup was rendered")
        d.shot("incident")
        d.go(url + "#problem/%d" % pid)
        e2e.wait_for(lambda: d.js("return document.querySelectorAll("
                                  "'table.candidates tbody tr').length;") >= 2,
                     20, "the problem's candidates")
        d.shot("problem")
        d.go(url + "#problems")
        e2e.wait_for(lambda: d.text("#problems"), 20, "the problems")
        d.shot("problems")
        d.go(url + "#agents")
        e2e.wait_for(lambda: "web-02" in (d.text("#agents") or ""), 20,
                     "the agents")
        e2e.check("tocsin-agent" in d.text("#agents"), d.text("#agents"))
        d.shot("agents")
        env.ctl("incidents", "resolve", str(disk["id"]), "--user", "alice")
        d.go(url + "#charts")
        e2e.wait_for(lambda: d.text("main h2") and "MTTA" in d.text("main h2")
                     and d.js("return document.querySelector('table.small "
                              "tbody tr') !== null;"), 20, "the charts")
        time.sleep(0.5)
        d.shot("charts")
        d.go(url + "#hints")
        e2e.wait_for(lambda: "Hints" in (d.text("main h2") or ""), 20,
                     "the hints page")
        d.shot("hints")
        # A refresh keeps the page current by itself: a new incident
        # appears without navigation.
        d.go(url + "#incidents")
        e2e.wait_for(lambda: d.text("#incidents"), 20, "incidents again")
        append(logs["web-01"], "boom second")
        e2e.wait_for(lambda: len(ctl_json(env, "incidents", "list",
                                          "--state", "open")) == 5, 30,
                     "a new incident")
        new = max(i["id"] for i in ctl_json(env, "incidents", "list"))
        e2e.wait_for(lambda: d.text('tr[data-id="%d"]' % new), 15,
                     "the new incident shown by the refresh")
    except Exception:
        # What the page showed when it failed, for the reviewer.
        try:
            d.shot("failure")
            print("page status: %r" % d.text("#status"))
        except Exception:
            pass
        raise
    finally:
        d.quit()
    e2e.check(json.loads(env.ctl("replay", "--json"))["identical"], "replay")


if __name__ == "__main__":
    e2e.main([test_static, test_dashboard])
