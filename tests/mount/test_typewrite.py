"""The write side for every object type: creates with associations (sent in
the create call itself), engagements' hs_timestamp, required properties and
a lead's contact checked at close, read-only types, per-type delete
semantics. Real syscalls on a real mount; what lands is read back from the
sandbox, API calls counted from its log."""
import errno
import json
import os
import stat
import time

import pytest

from tests.mount.util import api_calls, close_errno, count, ids, sync

# A small account with a few records of the types these tests write.
OBJECTS = {"notes": 2, "feedback_submissions": 2, "quotes": 1, "line_items": 3, "emails": 2,
           "leads": 1}


@pytest.fixture
def account(sandbox):
    sandbox.reset(contacts=5, companies=2, deals=2, tickets=2, objects=OBJECTS)
    return sandbox


def errors(m, n=1):
    """errors.log once it has at least n lines (a snapshot: the kernel may
    keep the previous one for up to a second)."""
    deadline = time.time() + 5
    while True:
        lines = [json.loads(line) for line in open(m.p(".hubfs", "errors.log")) if line.strip()]
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.2)


def not_a_readdir_last(m):
    """End on a round trip that is not a readdir: the kernel drops a
    RELEASEDIR still queued at unmount, and valgrind then reports the
    directory handle as lost."""
    assert m.status()["queue"]["pending"] == 0


def created_id(m, t, name):
    target = os.readlink(m.p(t, "_new", name))
    assert target.startswith("../") and target.endswith(".json"), target
    return target[3:-5]


def test_note_created_with_its_contact_lands_once(account, hubfs):
    """notes/_new/call-log.json with "associations": {"contacts": [id]}: one
    batch/create that carries the association (no association call), the
    note's hs_timestamp set to the time of the save, and contacts/<id>/notes/
    showing the link at once."""
    m = hubfs("writeback_delay_ms=200")
    cid = ids(m, "contacts")[0]
    before = os.listdir(m.p("contacts", cid, "notes"))
    account.clear_log()
    t0 = int(time.time() * 1000)
    body = {"properties": {"hs_note_body": "Call log: asked about the competitor's pricing"},
            "associations": {"contacts": [cid]}}
    assert close_errno(m.p("notes", "_new", "call-log.json"), json.dumps(body)) == 0
    sync(m)
    nid = created_id(m, "notes", "call-log.json")
    assert count(account, "POST", r"^/crm/v3/objects/notes/batch/create$") == 1, api_calls(account)
    assert count(account, "POST", r"^/crm/v4/associations/") == 0, api_calls(account)
    rec = account.record("notes", nid)
    assert cid in rec["associations"].get("contacts", {}), rec["associations"]
    ts = rec["properties"]["hs_timestamp"]
    ms = int(time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1000
    assert t0 - 2000 <= ms <= int(time.time() * 1000) + 1000, ts
    assert f"{nid}.json" in os.listdir(m.p("contacts", cid, "notes"))
    assert f"{nid}.json" not in before
    assert os.readlink(m.p("contacts", cid, "notes", f"{nid}.json")) == f"../../../notes/{nid}.json"
    assert f"{cid}.json" in os.listdir(m.p("notes", nid, "contacts"))
    # The file shows what landed, hs_timestamp included.
    assert json.load(open(m.p("notes", f"{nid}.json")))["properties"]["hs_timestamp"]
    # Nothing more is sent: the create is not repeated.
    sync(m)
    assert count(account, "POST", r"^/crm/v3/objects/notes/batch/create$") == 1, api_calls(account)


def test_create_refused_at_close(account, hubfs):
    """A missing required property, and a lead without a contact, fail close()
    with EINVAL and a line in errors.log that names what is missing; nothing
    is sent. With its contact, the lead lands (HubSpot's primary contact)."""
    m = hubfs("writeback_delay_ms=200")
    account.clear_log()
    quote = {"properties": {"hs_status": "DRAFT"}}
    assert close_errno(m.p("quotes", "_new", "q.json"), json.dumps(quote)) == errno.EINVAL
    last = errors(m)[-1]
    assert last["property"] == "hs_title", last
    assert "hs_title" in last["reason"] and "hs_expiration_date" in last["reason"], last
    assert last["rejected"] in os.listdir(m.p(".hubfs", "rejected"))

    lead = {"properties": {"hs_lead_name": "Lead without a contact"}}
    assert close_errno(m.p("leads", "_new", "l.json"), json.dumps(lead)) == errno.EINVAL
    last = errors(m, 2)[-1]
    assert "contact" in last["reason"] and "l.json" in last["file"], last
    bad = dict(lead, associations={"contacts": ["12x"]})
    assert close_errno(m.p("leads", "_new", "l2.json"), json.dumps(bad)) == errno.EINVAL
    assert "not a record id" in errors(m, 3)[-1]["reason"]
    sync(m)
    assert count(account, "POST", r"/batch/(create|upsert)$") == 0, api_calls(account)

    cid = ids(m, "contacts")[1]
    lead = {"properties": {"hs_lead_name": "Lead with its contact"},
            "associations": {"contacts": [cid]}}
    assert close_errno(m.p("leads", "_new", "l3.json"), json.dumps(lead)) == 0
    sync(m)
    lid = created_id(m, "leads", "l3.json")
    assert cid in account.record("leads", lid)["associations"]["contacts"]
    assert f"{lid}.json" in os.listdir(m.p("contacts", cid, "leads"))
    assert count(account, "POST", r"^/crm/v3/objects/leads/batch/create$") == 1, api_calls(account)
    not_a_readdir_last(m)


def test_read_only_type_is_erofs(account, hubfs):
    """Feedback submissions: files 0444 (less the umask), no _new/, and every
    write, create, delete or rename EROFS, allow_delete or not."""
    m = hubfs("writeback_delay_ms=200", "allow_delete", "umask=022")
    d = m.p("feedback_submissions")
    fid = ids(m, "feedback_submissions")[0]
    f = m.p("feedback_submissions", f"{fid}.json")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o444
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o555
    assert "_new" not in os.listdir(d)
    assert stat.S_IMODE(os.stat(m.p("notes", ids(m, "notes")[0] + ".json")).st_mode) == 0o644
    text = open(f).read()
    account.clear_log()

    def err(fn, *a):
        with pytest.raises(OSError) as e:
            fn(*a)
        return e.value.errno

    assert err(open, f, "w") == errno.EROFS           # O_TRUNC

    def append():
        fd = os.open(f, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)

    assert err(append) == errno.EROFS
    assert err(os.truncate, f, 0) == errno.EROFS
    assert err(os.unlink, f) == errno.EROFS
    assert err(os.rename, f, os.path.join(d, "x.json")) == errno.EROFS
    assert err(open, os.path.join(d, "new.json"), "w") == errno.EROFS
    assert err(os.mkdir, os.path.join(d, "_new")) == errno.EROFS
    assert err(os.mkdir, os.path.join(d, "x")) == errno.EROFS
    assert open(f).read() == text
    sync(m)
    assert count(account, "POST", r"/batch/(create|update|upsert|archive)$") == 0, api_calls(account)


def test_delete_semantics(account, hubfs):
    """With allow_delete: an email is deleted for good; a quote takes its line
    items along (gone from line_items/ at once, forgotten by the cache)."""
    qid = account.api("GET", "/crm/v3/objects/quotes").json()["results"][0]["id"]
    alone = account.create("line_items", {"name": "Not on the quote", "price": "10",
                                          "quantity": "1"})["id"]
    m = hubfs("writeback_delay_ms=200", "allow_delete")
    lis = ids(m, "line_items")
    children = sorted(n[:-5] for n in os.listdir(m.p("quotes", qid, "line_items")))
    if not children:
        account.associate("quotes", qid, "line_items", lis[0])
        children = [lis[0]]
    assert alone in lis and alone not in children
    eid = ids(m, "emails")[0]
    account.clear_log()
    os.unlink(m.p("emails", f"{eid}.json"))
    os.unlink(m.p("quotes", f"{qid}.json"))
    # The quote's line items leave with it, at once; the others stay.
    assert ids(m, "line_items") == sorted(set(lis) - set(children))
    assert f"{qid}.json" not in os.listdir(m.p("quotes"))
    sync(m)
    assert count(account, "POST", r"^/crm/v3/objects/emails/batch/archive$") == 1
    assert count(account, "POST", r"^/crm/v3/objects/quotes/batch/archive$") == 1
    # Gone for good: not even among the archived.
    r = account.api("GET", f"/crm/v3/objects/emails/{eid}", query={"archived": "true"})
    assert r.status == 404, r
    for li in children:
        assert account.record("line_items", li)["archived"] is True
        with pytest.raises(FileNotFoundError):
            os.stat(m.p("line_items", f"{li}.json"))
    assert ids(m, "line_items") == sorted(set(lis) - set(children))
    assert f"{eid}.json" not in os.listdir(m.p("emails"))
    assert not account.record("line_items", alone)["archived"]
    not_a_readdir_last(m)
