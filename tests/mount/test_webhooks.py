"""The webhook receiver (-o webhook_listen=): the sandbox POSTs signed event
batches for every change made as another client, and the mount shows the
change long before its ttl; every request that fails a check is counted and
changes nothing. API calls counted from the sandbox's request log."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, count

SECRET = "wh-secret-7c1e0d5a-91f3-4b7e-bb2a-0f6d5e3c2a19"
TTL = 60  # far longer than any wait here: what shows up early came by webhook
BATCH_READ = r"^/crm/v3/objects/contacts/batch/read$"
SEARCH = r"^/crm/v3/objects/contacts/search$"
SUBS = ["contact.creation", "contact.deletion", "contact.propertyChange", "contact.merge",
        "contact.restore", "contact.associationChange", "company.associationChange"]


def wait_for(fn, timeout=10, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def secret_file(tmp_path, text=SECRET, mode=0o600):
    p = tmp_path / "webhook-secret"
    p.write_text(text + "\n")
    os.chmod(p, mode)
    return p


def mount(hubfs, tmp_path, *opts, **kw):
    sf = secret_file(tmp_path)
    return hubfs(f"ttl={TTL}", "webhook_listen=127.0.0.1:0", f"webhook_secret_file={sf}",
                 *opts, **kw)


def url_of(m, path="/hubspot"):
    return f"http://{m.status()['webhooks']['listen']}{path}"


def subscribe(sandbox, m, **settings):
    settings.setdefault("batch_window_ms", 20)
    return sandbox.webhooks_subscribe(url_of(m), SECRET, SUBS, **settings)


def record(m, rid, t="contacts"):
    try:
        with open(m.p(t, f"{rid}.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def prop(m, rid, name, t="contacts"):
    r = record(m, rid, t)
    return r and r["properties"].get(name)


def listed(m, t="contacts"):
    return {f[:-5] for f in os.listdir(m.p(t)) if f.endswith(".json")}


def status(m):
    """status.json as of now (the file is a snapshot of up to 1 s)."""
    time.sleep(1.05)
    return m.status()


def sign_v3(body, url, ts, secret=SECRET, method="POST"):
    msg = method.encode() + url.encode() + body + str(ts).encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def post(url, body, headers=None, sign=True, secret=SECRET, ts=None, sig_url=None):
    """POST body to the receiver, signed v3 unless told otherwise -> status."""
    if isinstance(body, (list, dict)):
        body = json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    if sign:
        ts = ts if ts is not None else int(time.time() * 1000)
        h["X-HubSpot-Request-Timestamp"] = str(ts)
        h["X-HubSpot-Signature-v3"] = sign_v3(body, sig_url or url, ts, secret)
    h.update(headers or {})
    req = urllib.request.Request(url, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def event(sandbox, kind, rid, at=None, obj="contact", **extra):
    e = {"eventId": int(time.time() * 1e6) % 10**9, "subscriptionId": 1,
         "portalId": sandbox.config()["portal_id"], "appId": 1234567,
         "occurredAt": at if at is not None else int(time.time() * 1000),
         "subscriptionType": f"{obj}.{kind}", "attemptNumber": 0, "objectId": int(rid),
         "changeSource": "CRM"}
    e.update(extra)
    return e


@pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "foreground"])
def test_remote_change_shows_well_before_ttl(sandbox, hubfs, tmp_path, foreground):
    sandbox.reset(contacts=30, companies=5, deals=5, tickets=5)
    m = mount(hubfs, tmp_path, foreground=foreground)
    ids = sorted(listed(m))
    rid = ids[3]
    assert prop(m, rid, "jobtitle") != "Pushed Here"
    subscribe(sandbox, m)
    sandbox.clear_log()
    sandbox.update("contacts", rid, {"jobtitle": "Pushed Here"})
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Pushed Here"), api_calls(sandbox)
    # one batch read brought it; no search, no listing
    assert count(sandbox, "POST", BATCH_READ) == 1, api_calls(sandbox)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)
    assert count(sandbox, "GET", r"^/crm/v3/objects/contacts$") == 0, api_calls(sandbox)
    st = wait_for(lambda: (lambda s: s["events"]["records_stored"] >= 1 and s)(status(m)))
    assert st["webhooks"]["deliveries"] >= 1 and st["webhooks"]["listen"].startswith("127.0.0.1:")
    assert st["events"]["received"] >= 1 and st["events"]["applied"] >= 1
    assert st["events"]["records_stored"] >= 1 and st["events"]["last_event"]
    # while deliveries arrive, polling is only the safety net
    assert st["events"]["polling_backed_off"] is True
    assert st["events"]["refresh_every_s"] == TTL * 10

    # a burst of 40 changes on 20 records: coalesced into few batch reads
    sandbox.clear_log()
    for i, r in enumerate(ids[:20]):
        sandbox.update("contacts", r, {"jobtitle": f"Burst {i}"})
        sandbox.update("contacts", r, {"lastname": f"Burst {i}"})
    assert wait_for(lambda: all(prop(m, r, "lastname") == f"Burst {i}"
                                for i, r in enumerate(ids[:20]))), api_calls(sandbox)
    assert count(sandbox, "POST", BATCH_READ) <= 6, api_calls(sandbox)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)
