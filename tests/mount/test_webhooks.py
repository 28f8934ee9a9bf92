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
from tests.mount import util

SECRET = "wh-secret-7c1e0d5a-91f3-4b7e-bb2a-0f6d5e3c2a19"
TTL = 60  # far longer than any wait here: what shows up early came by webhook
BATCH_READ = r"^/crm/v3/objects/contacts/batch/read$"
SEARCH = r"^/crm/v3/objects/contacts/search$"
SUBS = ["contact.creation", "contact.deletion", "contact.propertyChange", "contact.merge",
        "contact.restore", "contact.associationChange", "company.associationChange"]


def wait_for(fn, timeout=10, step=0.05):
    return util.wait_for(fn, timeout, step)


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


def post_oversized(url, n=1024 * 1024 + 1):
    """A POST announcing n bytes: the receiver answers 413 before the body
    (it may close the connection while the body is still being sent)."""
    import socket
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    ts = int(time.time() * 1000)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall((f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {n}\r\n"
                   f"X-HubSpot-Request-Timestamp: {ts}\r\n"
                   f"X-HubSpot-Signature-v3: {'A' * 43}=\r\n\r\n").encode())
        try:
            s.sendall(b"x" * 65536)
        except OSError:
            pass
        line = s.makefile("rb").readline().decode()
    return int(line.split()[1])


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


def rejected(m):
    return status(m)["webhooks"]["rejected"]


def test_every_check_rejects_and_changes_nothing(sandbox, hubfs, tmp_path):
    """Requests crafted here (no subscription): each failed check has its
    answer and counter; none reads a record or changes a file."""
    sandbox.reset(contacts=10, companies=2, deals=2, tickets=2)
    m = mount(hubfs, tmp_path)
    rid = sorted(listed(m))[0]
    before = record(m, rid)
    url = url_of(m)
    sandbox.update("contacts", rid, {"jobtitle": "Only By Webhook"})  # nobody tells the mount
    good = [event(sandbox, "propertyChange", rid, propertyName="jobtitle")]
    body = json.dumps(good).encode()
    now = int(time.time() * 1000)
    sandbox.clear_log()

    assert post(url, body, headers={"X-HubSpot-Signature-v3": "A" * 43 + "="}) == 401
    assert post(url, body, secret="not-the-secret") == 401                     # wrong secret
    assert post(url, body, ts=now - 6 * 60 * 1000) == 401                      # stale
    tampered = body.replace(b'"CRM"', b'"API"')
    sig = sign_v3(body, url, now)
    assert post(url, tampered, sign=False, headers={
        "X-HubSpot-Request-Timestamp": str(now), "X-HubSpot-Signature-v3": sig}) == 401
    v1 = hashlib.sha256(SECRET.encode() + body).hexdigest()                    # v1 not enabled
    assert post(url, body, sign=False, headers={"X-HubSpot-Signature": v1,
                                                "X-HubSpot-Signature-Version": "v1"}) == 401
    assert post(url, body, sign=False) == 401                                  # unsigned
    assert post_oversized(url) == 413
    assert post(url, b"{not json") == 400
    assert post(url, {"objectId": 1}) == 400                                   # not an array
    assert post(url_of(m, "/elsewhere"), body) == 404
    # events the mount cannot use: ignored (200, so HubSpot does not retry)
    assert post(url, [event(sandbox, "creation", 5, obj="conversation"),
                      event(sandbox, "creation", 5, obj="spaceship"),
                      dict(event(sandbox, "propertyChange", rid), portalId=1)]) == 200
    r = rejected(m)
    assert r["signature"] == 5 and r["stale"] == 1 and r["size"] == 1 and r["json"] == 2, r
    assert r["path"] == 1, r
    assert status(m)["events"]["ignored_total"] == 3
    out = subprocess.run([HUBFS, "status", str(m.path)], capture_output=True, text=True).stdout
    assert "rejected: 5 signature 1 stale 1 size 2 json 1 path" in out, out
    assert "3 ignored" in out, out
    time.sleep(0.5)
    assert record(m, rid) == before
    assert count(sandbox, "POST", BATCH_READ) == 0, api_calls(sandbox)

    # an id HubSpot does not have: read once, found missing, nothing shown
    names = listed(m)
    assert post(url, [event(sandbox, "propertyChange", 987654321, propertyName="jobtitle")]) == 200
    assert wait_for(lambda: count(sandbox, "POST", BATCH_READ) == 1)
    assert listed(m) == names and not os.path.exists(m.p("contacts", "987654321.json"))

    # the valid request is applied; the same request again is a replay: 200, dropped
    ts = int(time.time() * 1000)
    assert post(url, body, ts=ts) == 200
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Only By Webhook")
    assert post(url, body, ts=ts) == 200
    st = status(m)
    assert st["webhooks"]["rejected"]["replay"] == 1
    assert st["webhooks"]["deliveries"] == 3, st["webhooks"]


def test_merge_deletion_restore_and_order(sandbox, hubfs, tmp_path):
    sandbox.reset(contacts=12, companies=3, deals=2, tickets=2)
    m = mount(hubfs, tmp_path)
    ids = sorted(listed(m), key=int)
    a, b, c, d = ids[:4]
    for x in (a, b, c):
        record(m, x)
    subscribe(sandbox, m)
    url = url_of(m)
    sandbox.clear_log()

    sandbox.archive("contacts", c)
    assert wait_for(lambda: c not in listed(m) and record(m, c) is None)
    sandbox.restore("contacts", c)
    assert wait_for(lambda: c in listed(m) and record(m, c) is not None)
    # the deletion delivered again (late, retried): older than the restore, so nothing
    at = sandbox.record("contacts", c)["updatedAt"]
    old = [event(sandbox, "deletion", c, at=at_ms(at) - 500)]
    assert post(url, old) == 200
    time.sleep(0.5)
    assert c in listed(m) and record(m, c) is not None

    # merge b into a: b's file goes, a is read again
    sandbox.merge("contacts", a, b)
    assert wait_for(lambda: b not in listed(m) and record(m, b) is None)
    assert a in listed(m) and record(m, a) is not None
    # no relist, no search: the events said it all
    assert count(sandbox, "GET", r"^/crm/v3/objects/contacts$") == 0, api_calls(sandbox)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)

    # a record created elsewhere joins the listing
    new = sandbox.create("contacts", {"email": "pushed@example.com", "firstname": "Pushed"})
    nid = str(new["id"])
    assert wait_for(lambda: nid in listed(m))
    assert prop(m, nid, "firstname") == "Pushed"

    # duplicated and reordered deliveries never roll a record back
    sandbox.webhook_fault("duplicate", count=3)
    sandbox.webhook_fault("out_of_order", count=3, hold_ms=300)
    for i in range(5):
        sandbox.update("contacts", d, {"jobtitle": f"Step {i}"})
        time.sleep(0.05)
    sandbox.webhooks_wait(timeout=10)
    assert wait_for(lambda: prop(m, d, "jobtitle") == "Step 4")
    time.sleep(0.5)
    assert prop(m, d, "jobtitle") == "Step 4"
    st = status(m)["events"]
    assert st["duplicates"] + st["out_of_order"] + st["reads_saved"] >= 1, st


def at_ms(iso):
    from datetime import datetime
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_listener_and_secret_stay_private(sandbox, hubfs, tmp_path):
    sandbox.reset(contacts=5, companies=2, deals=2, tickets=2)
    sf = secret_file(tmp_path)
    # a bare port binds the loopback only
    m = hubfs(f"ttl={TTL}", "webhook_listen=0", f"webhook_secret_file={sf}", "log_level=debug")
    st = m.status()
    assert st["webhooks"]["listen"].startswith("127.0.0.1:"), st["webhooks"]
    subscribe(sandbox, m)
    rid = sorted(listed(m))[0]
    record(m, rid)
    sandbox.update("contacts", rid, {"jobtitle": "Secret Kept"})
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Secret Kept")
    with open(f"/proc/{m.pid}/cmdline", "rb") as f:
        assert SECRET.encode() not in f.read()
    with open(m.p(".hubfs", "status.json")) as f:
        assert SECRET not in f.read()
    with open(m.p(".hubfs", "errors.log")) as f:
        assert SECRET not in f.read()
    m.unmount()
    assert "webhook" in m.stderr() and SECRET not in m.stderr()  # debug: every line there is
    # any other address when named
    m2 = hubfs(f"ttl={TTL}", "webhook_listen=0.0.0.0:0", f"webhook_secret_file={sf}")
    assert m2.status()["webhooks"]["listen"].startswith("0.0.0.0:")


@pytest.mark.parametrize("opts,why", [
    (["webhook_path=/x"], "need webhook_listen"),
    (["webhook_listen=127.0.0.1:0"], "client secret"),
    (["webhook_listen=127.0.0.1:0", "webhook_secret_file={loose}"], "0600"),
    (["webhook_listen=127.0.0.1:99999", "webhook_secret_file={sf}"], "webhook_listen"),
    (["webhook_listen=127.0.0.1:0", "webhook_secret_file={sf}", "webhook_public_url=ftp://x/"],
     "webhook_listen"),
])
def test_bad_webhook_options_refuse_to_mount(sandbox, hubfs, tmp_path, opts, why):
    sf = secret_file(tmp_path)
    loose = tmp_path / "loose"
    loose.write_text(SECRET)
    os.chmod(loose, 0o644)
    m = hubfs(*[o.format(sf=sf, loose=loose) for o in opts], wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True
    assert why in m.stderr(), m.stderr()
    assert SECRET not in m.stderr()


def test_polling_backs_off_while_deliveries_arrive(sandbox, hubfs, tmp_path):
    """ttl=1: while deliveries arrive the type's refresh (one search) runs
    every 10 ttl instead of every ttl. (That it is back to every ttl once they
    stop is tests/unit/test_cache_events.c's, with a short quiet time: here it
    would take ten seconds.)"""
    sandbox.reset(contacts=10, companies=2, deals=2, tickets=2)
    sf = secret_file(tmp_path)
    m = hubfs("ttl=1", "index_delay=1", "webhook_listen=127.0.0.1:0",
              f"webhook_secret_file={sf}")
    ids = sorted(listed(m))
    subscribe(sandbox, m)
    sandbox.update("contacts", ids[0], {"jobtitle": "Keeps Polling Away"})
    assert wait_for(lambda: prop(m, ids[0], "jobtitle") == "Keeps Polling Away")
    st = status(m)["events"]
    assert st["polling_backed_off"] and st["refresh_every_s"] == 10, st
    sandbox.webhooks_clear()  # no more deliveries
    sandbox.clear_log()
    time.sleep(2.2)  # two ttl: polling at ttl would search now
    for r in ids[1:4]:
        record(m, r)
    os.listdir(m.p("contacts"))
    time.sleep(0.5)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)


def test_oauth_client_secret_signs_and_config_sets_the_receiver(sandbox, hubfs, tmp_path):
    """With OAuth, the app's client_secret of the config (mode 0600) is the
    webhook secret; webhook_listen may live in the config like any option."""
    cid, cs, rt = "hubfs-wh-client", "cs-wh-5f0e2b7d-not-for-logs", "rt-wh-8a1c3e9f"
    sandbox.reset(contacts=8, companies=2, deals=2, tickets=2)
    sandbox.configure(client_id=cid, client_secret=cs, refresh_token=rt)
    d = tmp_path / "config" / "hubfs"
    d.mkdir(parents=True)
    (d / "config").write_text(f"[hubfs]\nwebhook_listen = 127.0.0.1:0\nttl = {TTL}\n\n"
                              f"[oauth]\nclient_id = {cid}\nclient_secret = {cs}\n"
                              f"refresh_token = {rt}\n")
    os.chmod(d / "config", 0o600)
    m = hubfs(token="")
    rid = sorted(listed(m))[0]
    record(m, rid)
    sandbox.webhooks_subscribe(url_of(m), cs, SUBS, batch_window_ms=20)
    sandbox.update("contacts", rid, {"jobtitle": "Signed By The App"})
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Signed By The App")
    # a delivery signed with another secret is refused
    assert post(url_of(m), [event(sandbox, "propertyChange", rid)]) == 401
    with open(m.p(".hubfs", "status.json")) as f:
        assert cs not in f.read()


def test_association_change_shows_in_both_directories(sandbox, hubfs, tmp_path):
    sandbox.reset(contacts=8, companies=4, deals=2, tickets=2)
    m = mount(hubfs, tmp_path)
    cid = sorted(listed(m), key=int)[0]
    co = sorted(listed(m, "companies"), key=int)[0]
    fwd = m.p("contacts", cid, "companies")
    back = m.p("companies", co, "contacts")
    had = f"{co}.json" in os.listdir(fwd)
    os.listdir(back)
    subscribe(sandbox, m)
    sandbox.clear_log()
    if had:
        sandbox.unassociate("contacts", cid, "companies", co)
    else:
        sandbox.associate("contacts", cid, "companies", co)
    assert wait_for(lambda: (f"{co}.json" in os.listdir(fwd)) != had), api_calls(sandbox)
    assert wait_for(lambda: (f"{cid}.json" in os.listdir(back)) != had), api_calls(sandbox)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)


ASSOC_READS = (r"^/crm/v4/associations/contacts/companies/batch/read$",
               r"^/crm/v4/associations/companies/contacts/batch/read$")


def test_association_link_goes_and_comes_at_once(sandbox, hubfs, tmp_path):
    """The kernel keeps a link it looked up for ttl (60 s here): once an
    associationChange removes the association, the link stops resolving on
    both sides at once, as the listing shows; once one adds it back, the link
    that was missing resolves at once."""
    sandbox.reset(contacts=8, companies=4, deals=2, tickets=2)
    m = mount(hubfs, tmp_path)
    cid = sorted(listed(m), key=int)[0]
    co = sorted(listed(m, "companies"), key=int)[0]
    sandbox.associate("contacts", cid, "companies", co)
    fwd = m.p("contacts", cid, "companies", f"{co}.json")
    back = m.p("companies", co, "contacts", f"{cid}.json")
    # looked up (and listed): the kernel holds both entries for ttl
    assert os.readlink(fwd) == f"../../../companies/{co}.json"
    assert os.readlink(back) == f"../../../contacts/{cid}.json"
    assert f"{co}.json" in os.listdir(os.path.dirname(fwd))
    assert f"{cid}.json" in os.listdir(os.path.dirname(back))
    os.lstat(fwd), os.stat(back)
    assoc_file = m.p("contacts", cid, "associations.json")
    def in_assoc_file():
        with open(assoc_file) as f:
            return co in {x["id"] for x in json.load(f)["companies"]}
    assert in_assoc_file()
    subscribe(sandbox, m)
    sandbox.clear_log()

    sandbox.unassociate("contacts", cid, "companies", co)
    assert wait_for(lambda: not os.path.lexists(fwd) and not os.path.lexists(back),
                    timeout=5), api_calls(sandbox)
    for p in (fwd, back):
        with pytest.raises(FileNotFoundError):
            os.readlink(p)
        with pytest.raises(FileNotFoundError):
            open(p).close()
    assert f"{co}.json" not in os.listdir(os.path.dirname(fwd))
    assert f"{cid}.json" not in os.listdir(os.path.dirname(back))
    assert not in_assoc_file()  # its size and pages were forgotten too
    # each side's map read again once (twice if the change's two events came
    # in two deliveries); no record read, no search
    for r in ASSOC_READS:
        assert 1 <= count(sandbox, "POST", r) <= 2, api_calls(sandbox)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)
    assert count(sandbox, "POST", BATCH_READ) == 0, api_calls(sandbox)

    sandbox.clear_log()
    sandbox.associate("contacts", cid, "companies", co)
    assert wait_for(lambda: os.path.lexists(fwd) and os.path.lexists(back),
                    timeout=5), api_calls(sandbox)
    assert os.readlink(fwd) == f"../../../companies/{co}.json"
    with open(back) as f:
        assert json.load(f)["id"] == cid
    for r in ASSOC_READS:
        assert 1 <= count(sandbox, "POST", r) <= 2, api_calls(sandbox)
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)


def test_own_write_echoed_costs_no_read(sandbox, hubfs, tmp_path):
    """HubSpot also delivers the changes this mount made: the copy the write
    landed with is as new as the event, so no read follows."""
    sandbox.reset(contacts=8, companies=2, deals=2, tickets=2)
    m = mount(hubfs, tmp_path)
    rid = sorted(listed(m))[0]
    subscribe(sandbox, m)
    p = m.p("contacts", f"{rid}.json")
    subprocess.run(["sed", "-i", 's/"jobtitle": [^,]*/"jobtitle": "Written Here"/', p], check=True)
    subprocess.run([HUBFS, "sync", str(m.path)], check=True, capture_output=True)
    st = wait_for(lambda: (lambda s: s["events"]["received"] >= 1 and s)(status(m)))
    assert st["events"]["reads_saved"] >= 1 and st["events"]["calls"] == 0, st["events"]
    assert prop(m, rid, "jobtitle") == "Written Here"


@pytest.mark.faults
def test_failed_read_is_tried_again(sandbox, hubfs, tmp_path):
    """A batch read that fails for good (here a 400, which the client does not
    retry) gives its ids back; they are read again a moment later."""
    sandbox.reset(contacts=8, companies=2, deals=2, tickets=2)
    m = mount(hubfs, tmp_path)
    rid = sorted(listed(m))[0]
    record(m, rid)
    subscribe(sandbox, m)
    sandbox.fault("status", status=400, count=2, method="POST", path=r"/batch/read$")
    sandbox.update("contacts", rid, {"jobtitle": "Second Time Lucky"})
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Second Time Lucky", timeout=15), \
        api_calls(sandbox)
    st = status(m)["events"]
    assert st["calls_failed"] == 2 and st["calls"] == 3, st
