#!/usr/bin/env python3
"""HTTP API load for bench/api.sh (Python 3 stdlib only).

  apiload.py latency URL CA TOKEN SECS RATE DEEP_ID
      GET /api/v1/incidents at RATE requests/s for SECS seconds on one
      keep-alive TLS connection, alternating the first page (default
      limit, 50) and the page below incident DEEP_ID (a cursor built as
      the API builds it: base64url of "i<id>"). Prints p50/p99/max per
      kind. Requests are paced on a fixed schedule; a late answer does
      not shift the next request's slot (no coordinated omission: a
      request is timed from its slot, not from when it went out).
      Exits 1 if an answer is not 200 or has the wrong number of rows.

  apiload.py dashboard URL CA TOKEN STOPFILE
      What an open dashboard asks for (dashboard/app.js refresh() on the
      incidents view): every 5 s, counts() (GET /api/v1/summary), then,
      in parallel as the browser does, viewIncidents(): one page of 100
      open and one of 100 acknowledged incidents, order=priority. One
      keep-alive connection per request of the view, kept across
      refreshes. Runs until STOPFILE exists (the first refresh at once).
      Prints refreshes, requests, rows and the refreshes' durations.

  apiload.py dashboard-old URL CA TOKEN STOPFILE
      The same for the dashboard before /api/v1/summary (bench/README.md
      "API", the "before" rows): counts() read the open and acknowledged
      incidents up to 5000 each and the open problems up to 5000 in
      pages of 500, and /agents; viewIncidents() the open and
      acknowledged ones up to 2000 each: 18 requests, 7,000 rows.
"""
import base64
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse


def connect(url, ca):
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)
    # The bench's collector certificate names localhost; we dial the IP.
    ctx.check_hostname = False
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx,
                                       timeout=30)


def get(conn, path, token):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    return r.status, body


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


def latency(url, ca, token, secs, rate, deep_id):
    conn = connect(url, ca)
    cur = base64.urlsafe_b64encode(b"i%d" % deep_id).rstrip(b"=").decode()
    kinds = (("first page", "/api/v1/incidents"),
             ("deep page (cursor i%d)" % deep_id,
              "/api/v1/incidents?cursor=" + cur))
    lat = {k: [] for k, _ in kinds}
    bad = 0
    n = int(secs * rate)
    t0 = time.monotonic()
    for i in range(n):
        slot = t0 + i / rate
        d = slot - time.monotonic()
        if d > 0:
            time.sleep(d)
        name, path = kinds[i % 2]
        status, body = get(conn, path, token)
        lat[name].append(time.monotonic() - slot)
        if status != 200 or len(json.loads(body)["incidents"]) != 50:
            bad += 1
            if bad <= 3:
                print("%s: status %d: %s" % (path, status, body[:200]))
    for name, v in lat.items():
        print("GET %s: n=%d p50=%.1fms p99=%.1fms max=%.1fms" %
              (name, len(v), pct(v, 50) * 1e3, pct(v, 99) * 1e3,
               max(v) * 1e3))
    late = time.monotonic() - (t0 + n / rate)
    print("requests=%d rate=%g/s bad=%d (ended %.2fs after the last slot)" %
          (n, rate, bad, late))
    return 1 if bad else 0


# dashboard/app.js refresh(), incidents view: (path, rows key or None
# for one document, most rows, page size), each a chain of requests;
# the stages run one after the other, the chains of a stage in parallel.
NEW = ((("/api/v1/summary", None, 0, 0),),
       (("/api/v1/incidents?state=open&order=priority", "incidents", 100,
         100),
        ("/api/v1/incidents?state=acknowledged&order=priority", "incidents",
         100, 100)))
OLD = ((("/api/v1/incidents?state=open", "incidents", 5000, 500),
        ("/api/v1/incidents?state=acknowledged", "incidents", 5000, 500),
        ("/api/v1/problems?state=open", "problems", 5000, 500),
        ("/api/v1/agents", None, 0, 0),
        ("/api/v1/incidents?state=open", "incidents", 2000, 500),
        ("/api/v1/incidents?state=acknowledged", "incidents", 2000, 500)),)


def dashboard(url, ca, token, stop, stages):
    width = max(len(st) for st in stages)
    conns = [connect(url, ca) for _ in range(width)]
    for c in conns:
        c.connect()
    stats = {"requests": 0, "rows": 0, "bad": 0}
    lock = threading.Lock()

    def run(conn, path, key, most, size):
        rows, reqs, bad, cur = 0, 0, 0, None
        while True:
            if key is None:
                p = path
            else:
                p = path + "&limit=%d" % size + ("&cursor=" + cur if cur
                                                 else "")
            status, body = get(conn, p, token)
            reqs += 1
            if status != 200:
                bad += 1
                break
            if key is None:
                break
            doc = json.loads(body)
            rows += len(doc[key])
            cur = doc["next_cursor"]
            if not cur or rows >= most:
                break
        with lock:
            stats["requests"] += reqs
            stats["rows"] += rows
            stats["bad"] += bad

    took = []
    t0 = time.monotonic()
    k = 0
    # Connected: the script starts the ingest run now.
    open(stop + ".ready", "w").close()
    while True:
        slot = t0 + 5.0 * k
        while time.monotonic() < slot and not os.path.exists(stop):
            time.sleep(0.05)
        if k > 0 and os.path.exists(stop):
            break
        s = time.monotonic()
        for stage in stages:
            ts = [threading.Thread(target=run, args=(c,) + ch)
                  for c, ch in zip(conns, stage)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        took.append(time.monotonic() - s)
        k += 1
    print("dashboard: refreshes=%d requests=%d rows=%d bad=%d "
          "refresh p50=%.0fms max=%.0fms" %
          (len(took), stats["requests"], stats["rows"], stats["bad"],
           pct(took, 50) * 1e3, max(took) * 1e3))
    return 1 if stats["bad"] else 0


def main(a):
    if len(a) == 8 and a[1] == "latency":
        return latency(a[2], a[3], a[4], float(a[5]), float(a[6]), int(a[7]))
    if len(a) == 6 and a[1] in ("dashboard", "dashboard-old"):
        return dashboard(a[2], a[3], a[4], a[5],
                         NEW if a[1] == "dashboard" else OLD)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
