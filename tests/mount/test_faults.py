"""Faults: 429 storms, 5xx, cut responses, latency spikes, a daemon killed with
work queued. Nothing hangs past op_timeout, nothing is lost, nothing is sent
twice. Suite `faults` (run by scripts/test)."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, count, sync

pytestmark = pytest.mark.faults

SLACK = 10  # seconds of scheduling slack on a loaded 2-core machine


def timed(fn):
    t0 = time.time()
    try:
        fn()
        err = None
    except OSError as e:
        err = e.errno
    return err, time.time() - t0


def test_read_syscalls_survive_429_storm_and_5xx(sandbox, hubfs):
    T = 12
    m = hubfs(f"op_timeout={T}", allow=("warning", "error"))
    # a 429 storm: the client waits out the 10 s window and the listing completes
    sandbox.fault("429", seconds=2, policy="TEN_SECONDLY_ROLLING", path="/crm/v3/objects/contacts")
    err, took = timed(lambda: os.listdir(m.p("contacts")))
    # listdir is several getdents calls, each bounded by op_timeout
    assert err is None and took < 2 * T + SLACK, (err, took)
    # a 5xx burst: retried with backoff
    sandbox.fault("503", count=3)
    err, took = timed(lambda: os.listdir(m.p("deals")))
    assert err is None and took < 2 * T + SLACK, (err, took)
    # cut responses and latency spikes on record reads
    d = sorted(f for f in os.listdir(m.p("deals")) if f.endswith(".json"))[0][:-5]
    sandbox.fault("cut", count=2)
    sandbox.fault("latency", count=2, latency_ms=1500)
    err, took = timed(lambda: os.listdir(m.p("deals", d, "contacts")))
    assert err is None and took < T + SLACK, (err, took)
    # a failure that outlasts op_timeout: EAGAIN/EIO in time, never a hang
    sandbox.fault("500", seconds=60)
    for what, fn in (("stat of an uncached record", lambda: os.stat(m.p("companies", "2000005.json"))),
                     ("listing a type", lambda: os.listdir(m.p("tickets")))):
        err, took = timed(fn)
        assert err in (5, 11), (what, err)  # EIO, EAGAIN
        assert took < T + SLACK, (what, took)
    sandbox.clear_faults()
    # cached data still served while HubSpot is down
    sandbox.fault("drop", seconds=30)
    with open(m.p("contacts", sorted(os.listdir(m.p("contacts")))[0])) as f:
        json.load(f)
    sandbox.clear_faults()


def test_offline_serves_cache_and_says_so(sandbox, hubfs):
    m = hubfs("op_timeout=3", "ttl=1", allow=("warning", "error"))
    names = sorted(f for f in os.listdir(m.p("contacts")) if f.endswith(".json"))
    sandbox.fault("drop", seconds=60)
    time.sleep(1.5)  # past ttl: a refresh is due and fails
    with open(m.p("contacts", names[0])) as f:
        assert json.load(f)["id"] == names[0][:-5]
    # the access started a background refresh, which finds HubSpot gone
    deadline = time.time() + 15
    while m.status()["online"] is not False and time.time() < deadline:
        time.sleep(0.3)
    st = m.status()
    assert st["online"] is False
    with open(m.p("contacts", names[1])) as f:  # still served
        assert json.load(f)["id"] == names[1][:-5]
    assert os.getxattr(m.p("contacts", names[0]), "user.hubfs.state") == b"stale"
    out = subprocess.run([HUBFS, "status", m.path], capture_output=True, text=True).stdout
    assert "OFFLINE" in out
    sandbox.clear_faults()


class Storm(threading.Thread):
    """Keeps injecting faults: 5xx, 429 storms, cut responses, latency spikes."""

    def __init__(self, sandbox):
        super().__init__(daemon=True)
        self.sb = sandbox
        self.stop = threading.Event()

    def run(self):
        kinds = [("500", {}), ("503", {}), ("502", {}), ("cut", {}),
                 ("latency", {"latency_ms": 800}),
                 ("429", {"policy": "TEN_SECONDLY_ROLLING"}), ("504", {})]
        i = 0
        while not self.stop.wait(0.7):
            kind, kw = kinds[i % len(kinds)]
            try:
                if kind == "429":
                    self.sb.fault(kind, seconds=1.5, **kw)
                else:
                    self.sb.fault(kind, count=1, **kw)
            except Exception:
                pass
            i += 1


def test_edits_and_creates_land_exactly_once_under_faults(sandbox, hubfs):
    sandbox.reset(contacts=1000, companies=50, deals=20, tickets=5)
    sandbox.configure(rate_limit="100/10s")
    m = hubfs("writeback_delay_ms=500", "op_timeout=10", allow=("warning", "error", "answer lost"))
    m.run(["ls", "-l", "contacts", "companies"])
    storm = Storm(sandbox)
    storm.start()
    try:
        m.run("sed -i 's/\"jobtitle\": [^,]*/\"jobtitle\": \"Storm Proof\"/' contacts/*.json", timeout=600)
        for i in range(20):
            with open(m.p("companies", "_new", f"storm{i}.json"), "w") as f:
                json.dump({"properties": {"name": f"Storm Co {i}", "domain": f"storm{i}.test"}}, f)
        time.sleep(5)
    finally:
        storm.stop.set()
        storm.join()
    sandbox.clear_faults()
    sync(m, timeout=600)
    ids = [f[:-5] for f in os.listdir(m.p("contacts")) if f.endswith(".json")]
    bad = [i for i in ids if sandbox.record("contacts", i)["properties"].get("jobtitle") != "Storm Proof"]
    assert not bad, bad[:10]
    assert_companies_once(sandbox, 20)
    injected = count(sandbox, status=429)
    natural = sum(1 for e in sandbox.log() if e["status"] == 429 and not e.get("injected"))
    assert natural == 0, api_calls(sandbox)
    print(f"\nunder faults: {injected} 429s injected, {len(sandbox.log())} requests in all")


def assert_companies_once(sandbox, n, prefix="Storm Co "):
    sandbox.flush_index()
    for _ in range(50):  # the account's 5/s search budget is shared with hubfs
        resp = sandbox.api("POST", "/crm/v3/objects/companies/search", {
            "filterGroups": [{"filters": [{"propertyName": "name", "operator": "CONTAINS_TOKEN",
                                           "value": prefix.split()[0]}]}],
            "properties": ["name"], "limit": 200})
        if resp.status != 429:
            break
        time.sleep(0.3)
    r = resp.json()
    names = [x["properties"]["name"] for x in r["results"] if x["properties"]["name"].startswith(prefix)]
    assert sorted(names) == sorted(set(names)), "duplicates: %s" % sorted(names)
    assert len(names) == n, sorted(names)


def test_kill9_with_queued_edits_and_inflight_creates(sandbox, hubfs):
    sandbox.reset(contacts=1000, companies=50, deals=20, tickets=5)
    sandbox.configure(index_delay=1)
    m = hubfs("writeback_delay_ms=300", "index_delay=1", allow=("warning", "error"))
    m.run(["ls", "-l", "contacts"])
    # Creates go out and hang (the sandbox applies them after the delay);
    # updates are refused for now, so they stay queued.
    sandbox.fault("latency", count=1, latency_ms=8000, path="/crm/v3/objects/companies/batch/create")
    sandbox.fault("429", seconds=120, policy="TEN_SECONDLY_ROLLING",
                  path="/crm/v3/objects/contacts/batch/(update|read)")
    for i in range(20):
        with open(m.p("companies", "_new", f"kill{i}.json"), "w") as f:
            json.dump({"properties": {"name": f"Killed Co {i}", "domain": f"kill{i}.test"}}, f)
    time.sleep(1.5)  # the create batch is in flight now
    m.run("sed -i 's/\"jobtitle\": [^,]*/\"jobtitle\": \"Survivor\"/' contacts/*.json", timeout=600)
    assert m.status()["queue"]["pending"] >= 1000 or m.status()["queue"]["in_flight"] >= 1
    m.signal(signal.SIGKILL)
    assert m.wait_exit(30) == -signal.SIGKILL
    m.kill()
    m.unmounted = True
    time.sleep(9)  # the hung create completes on the server meanwhile
    sandbox.clear_faults()

    m2 = hubfs("writeback_delay_ms=300", "index_delay=1", allow=("warning", "error", "in doubt"))
    sync(m2, timeout=600)
    ids = [f[:-5] for f in os.listdir(m2.p("contacts")) if f.endswith(".json")]
    assert len(ids) == 1000
    bad = [i for i in ids if sandbox.record("contacts", i)["properties"].get("jobtitle") != "Survivor"]
    assert not bad, bad[:10]
    assert_companies_once(sandbox, 20, prefix="Killed Co ")
