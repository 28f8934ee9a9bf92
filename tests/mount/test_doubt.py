"""A write whose answer is lost: HubSpot applied it, then the connection
dropped before the answer (the sandbox's `drop_after` fault). For every write
call hubfs makes, the write is sent once, never again by the transport or the
client, it goes in doubt, is looked up, and is found landed: zero duplicates,
every edit once, and status.json says so. Suite `faults`."""
import json
import os

import pytest

from tests.mount.util import api_calls, count, ids, start_mount, sync

pytestmark = pytest.mark.faults

ALLOW = ("warning", "answer lost", "in doubt", "in-doubt")


def search_eq(sandbox, t, prop, value):
    sandbox.flush_index()
    r = sandbox.api("POST", f"/crm/v3/objects/{t}/search", {
        "filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}],
        "properties": [prop], "limit": 100}).json()
    return [x["id"] for x in r["results"]]


def assoc_ids(sandbox, cid):
    return set(sandbox.record("contacts", cid)["associations"].get("companies", {}))


# Each case: (write endpoint, a function doing the edit and returning a check).

def do_create(sandbox, m):
    with open(m.p("deals", "_new", "doubt.json"), "w") as f:
        json.dump({"properties": {"dealname": "Doubtful Deal", "pipeline": "default",
                                  "dealstage": "appointmentscheduled"}}, f)

    def check():
        found = search_eq(sandbox, "deals", "dealname", "Doubtful Deal")
        assert len(found) == 1, found
        assert os.readlink(m.p("deals", "_new", "doubt.json")) == f"../{found[0]}.json"
    return check


def do_upsert(sandbox, m):
    with open(m.p("contacts", "_new", "doubt.json"), "w") as f:
        json.dump({"properties": {"email": "in.doubt@example.test", "firstname": "Doubt"}}, f)

    def check():
        found = search_eq(sandbox, "contacts", "email", "in.doubt@example.test")
        assert len(found) == 1, found
        assert os.readlink(m.p("contacts", "_new", "doubt.json")) == f"../{found[0]}.json"
    return check


def do_update(sandbox, m):
    cid = ids(m, "contacts")[0]
    m.run(["sed", "-i", 's/"jobtitle": [^,]*/"jobtitle": "Once Only"/', f"contacts/{cid}.json"])

    def check():
        assert sandbox.record("contacts", cid)["properties"]["jobtitle"] == "Once Only"
    return check


def do_archive(sandbox, m):
    cid = ids(m, "contacts")[0]
    os.unlink(m.p("contacts", f"{cid}.json"))

    def check():
        assert sandbox.record("contacts", cid)["archived"] is True
        assert f"{cid}.json" not in os.listdir(m.p("contacts"))
    return check


def do_assoc_add(sandbox, m):
    cid = ids(m, "contacts")[0]
    have = set(os.listdir(m.p("contacts", cid, "companies")))
    comp = next(f for f in ids(m, "companies") if f + ".json" not in have)
    os.symlink(f"../../../companies/{comp}.json", m.p("contacts", cid, "companies", f"{comp}.json"))

    def check():
        assert comp in assoc_ids(sandbox, cid)
    return check


def do_assoc_del(sandbox, m):
    cid = next(c for c in ids(m, "contacts") if assoc_ids(sandbox, c))
    comp = sorted(assoc_ids(sandbox, cid))[0]
    os.unlink(m.p("contacts", cid, "companies", f"{comp}.json"))

    def check():
        assert comp not in assoc_ids(sandbox, cid)
    return check


def v4_types(sandbox, cid, comp):
    r = sandbox.api("GET", f"/crm/v4/objects/contacts/{cid}/associations/companies").json()
    return {t["typeId"] for x in r["results"] if str(x["toObjectId"]) == comp
            for t in x["associationTypes"]}


def edit_labels(m, cid, comp, change):
    p = m.p("contacts", cid, "associations.json")
    with open(p) as f:
        doc = json.load(f)
    e = next(x for x in doc["companies"] if x["id"] == comp)
    change(e["labels"])
    with open(p, "w") as f:
        json.dump({"companies": doc["companies"]}, f)


def do_label_add(sandbox, m):
    """A label added by editing associations.json (batch/create)."""
    cid = next(c for c in ids(m, "contacts") if assoc_ids(sandbox, c))
    comp = sorted(assoc_ids(sandbox, cid))[0]
    edit_labels(m, cid, comp, lambda ls: ls.append("Billing contact"))

    def check():
        assert 30 in v4_types(sandbox, cid, comp)
    return check


def do_label_del(sandbox, m):
    """A label removed by editing associations.json (batch/labels/archive)."""
    cid = next(c for c in ids(m, "contacts") if assoc_ids(sandbox, c))
    comp = sorted(assoc_ids(sandbox, cid))[0]
    assert 1 in v4_types(sandbox, cid, comp)  # the seed's primary company
    edit_labels(m, cid, comp, lambda ls: ls.remove("Primary"))

    def check():
        assert 1 not in v4_types(sandbox, cid, comp) and 279 in v4_types(sandbox, cid, comp)
    return check


def do_create_note(sandbox, m):
    """A note created with its contact (the association in the create call):
    looked up by the hs_timestamp hubfs gave it, never sent twice."""
    cid = ids(m, "contacts")[0]
    with open(m.p("notes", "_new", "doubt.json"), "w") as f:
        json.dump({"properties": {"hs_note_body": "Doubtful note"},
                   "associations": {"contacts": [cid]}}, f)

    def check():
        nid = os.readlink(m.p("notes", "_new", "doubt.json"))[3:-5]
        notes = sandbox.record("contacts", cid)["associations"].get("notes", {})
        assert list(notes) == [nid], notes
        assert f"{nid}.json" in os.listdir(m.p("contacts", cid, "notes"))
        body = sandbox.record("notes", nid)["properties"]["hs_note_body"]
        assert "Doubtful note" in body, body
    return check


CASES = {
    "label_add": (r"^/crm/v4/associations/contacts/companies/batch/create$", do_label_add),
    "label_del": (r"^/crm/v4/associations/contacts/companies/batch/labels/archive$", do_label_del),
    "create_note": (r"^/crm/v3/objects/notes/batch/create$", do_create_note),
    "create": (r"^/crm/v3/objects/deals/batch/create$", do_create),
    "upsert": (r"^/crm/v3/objects/contacts/batch/upsert$", do_upsert),
    "update": (r"^/crm/v3/objects/contacts/batch/update$", do_update),
    "archive": (r"^/crm/v3/objects/contacts/batch/archive$", do_archive),
    "assoc_add": (r"^/crm/v4/associations/contacts/companies/batch/associate/default$", do_assoc_add),
    "assoc_del": (r"^/crm/v4/associations/contacts/companies/batch/archive$", do_assoc_del),
}


@pytest.mark.parametrize("mode", ["foreground", "daemon"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_dropped_after_the_server_acted(sandbox, hubfs, case, mode):
    path, act = CASES[case]
    m = start_mount(hubfs, mode, "writeback_delay_ms=300", "index_delay=2", "allow_delete",
                    allow=ALLOW)
    # Warm connections: the write then goes out where a reused connection
    # would be at hand.
    for t in ("contacts", "companies", "deals"):
        os.listdir(m.p(t))
    sandbox.fault("drop_after", count=1, path=path)
    check = act(sandbox, m)
    sync(m)
    check()
    assert count(sandbox, path_re=path) == 1, api_calls(sandbox)  # sent once, never again
    assert sandbox.faults() == [], "the write never reached the dropping server"
    st = m.status()
    assert st["in_doubt"] == {"answers_lost": 1, "found_landed": 1, "not_landed": 0}, st["in_doubt"]
    assert st["queue"]["in_doubt"] == 0 and st["queue"]["pending"] == 0, st["queue"]
