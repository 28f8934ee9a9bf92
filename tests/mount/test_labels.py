"""Association labels on a real mount against the sandbox's --demo account:
<type>/<id>/associations.json (read, edited with python and with sed -i),
schema/labels/, the labels of links as xattrs of their directory; what lands
is read back from the sandbox, API calls counted from its request log."""
import errno
import json
import os
import subprocess

import pytest

from tests.mount.util import sync

LABEL_WRITE = r"^/crm/v4/associations/contacts/companies/batch/(create|labels/archive)$"


def server_types(sandbox, ft, fid, tt, tid):
    """The association type ids ft/fid -> tt/tid, from the sandbox's v4 API."""
    r = sandbox.api("GET", "/crm/v4/objects/%s/%s/associations/%s" % (ft, fid, tt))
    for x in r.json()["results"]:
        if str(x["toObjectId"]) == str(tid):
            return {t["typeId"]: t["label"] for t in x["associationTypes"]}
    return {}


def posts(sandbox, path_re, since):
    import re
    return [e for e in sandbox.log(since=since) if e["method"] == "POST"
            and re.search(path_re, e["path"])]


@pytest.fixture
def demo(sandbox, hubfs):
    sandbox.reset(demo=True)
    m = hubfs("writeback_delay_ms=200")
    # a contact with a primary company (the demo seeds contact -> company
    # "Primary" with the unlabeled type)
    for f in sorted(os.listdir(m.p("contacts"))):
        cid = f[:-5]
        with open(m.p("contacts", cid, "associations.json")) as fh:
            doc = json.load(fh)
        if any("Primary" in e["labels"] for e in doc["companies"]):
            return m, cid, doc
    pytest.fail("the demo seeds no contact with a primary company")


def test_associations_json_shows_the_seeded_labels(sandbox, demo):
    m, cid, doc = demo
    assert list(doc) == sorted(doc), "keys are sorted"
    assert "companies" in doc and "deals" in doc and "contacts" not in doc
    for key, entries in doc.items():
        ids = [int(e["id"]) for e in entries]
        assert ids == sorted(ids), key
        assert os.listdir(m.p("contacts", cid, key)) is not None
        assert sorted(f[:-5] for f in os.listdir(m.p("contacts", cid, key))) == \
            sorted(e["id"] for e in entries), key
    prim = next(e for e in doc["companies"] if "Primary" in e["labels"])
    want = server_types(sandbox, "contacts", cid, "companies", prim["id"])
    assert {t["typeId"]: t["label"] for t in prim["types"]} == want
    assert prim["labels"] == [l for _, l in sorted(want.items()) if l]
    # the definitions of the pair, under schema/labels/
    assert "contacts_to_companies.json" in os.listdir(m.p("schema", "labels"))
    with open(m.p("schema", "labels", "contacts_to_companies.json")) as fh:
        defs = json.load(fh)
    assert defs["from"] == "contacts" and defs["to"] == "companies"
    assert "Primary" in defs["labels"] and "Billing contact" in defs["labels"]
    # the link's labels, as an xattr of its directory (Linux keeps user.*
    # attributes off symlinks)
    d = m.p("contacts", cid, "companies")
    assert os.getxattr(d, "user.hubspot.labels." + prim["id"]).decode() == \
        ",".join(prim["labels"])
    assert "user.hubspot.labels." + prim["id"] in os.listxattr(d)


def _company_with_primary(doc):
    return next(e for e in doc["companies"] if "Primary" in e["labels"])


def test_adding_a_label_with_python_lands(sandbox, demo):
    m, cid, doc = demo
    prim = _company_with_primary(doc)
    prim["labels"].append("Billing contact")
    since = sandbox.last_seq()
    with open(m.p("contacts", cid, "associations.json"), "w") as fh:
        json.dump(doc, fh)
    # read-your-writes before it lands
    with open(m.p("contacts", cid, "associations.json")) as fh:
        now = json.load(fh)
    assert "Billing contact" in _company_with_primary(now)["labels"]
    sync(m)
    assert "Billing contact" in server_types(sandbox, "contacts", cid, "companies",
                                             prim["id"]).values()
    # one batch/create, nothing else written
    writes = posts(sandbox, r"/batch/(create|archive|labels/archive|associate/default|update)$",
                   since)
    assert [w["path"] for w in writes] == \
        ["/crm/v4/associations/contacts/companies/batch/create"], writes
    # and nothing else but the pair's label definitions (the link and its
    # record were known)
    assert sorted((e["method"], e["path"]) for e in sandbox.log(since=since)
                  if not e["path"].startswith("/crm/v4/objects/")) == [
        ("GET", "/crm/v4/associations/contacts/companies/labels"),
        ("POST", "/crm/v4/associations/contacts/companies/batch/create")]
    # and removing it again is one labels/archive; Primary stays
    with open(m.p("contacts", cid, "associations.json")) as fh:
        doc = json.load(fh)
    _company_with_primary(doc)["labels"].remove("Billing contact")
    since = sandbox.last_seq()
    with open(m.p("contacts", cid, "associations.json"), "w") as fh:
        json.dump(doc, fh)
    sync(m)
    after = server_types(sandbox, "contacts", cid, "companies", prim["id"])
    assert "Billing contact" not in after.values() and "Primary" in after.values()
    assert [w["path"] for w in posts(sandbox, LABEL_WRITE, since)] == \
        ["/crm/v4/associations/contacts/companies/batch/labels/archive"]


def test_adding_a_label_with_sed_lands(sandbox, demo):
    m, cid, doc = demo
    prim = _company_with_primary(doc)
    since = sandbox.last_seq()
    # "labels": ["Primary"] of that entry -> ["Primary", "Billing contact"]
    text = open(m.p("contacts", cid, "associations.json")).read()
    assert '"Primary"\n' in text
    r = m.run(["sed", "-i", '0,/"Primary"$/s//"Primary", "Billing contact"/',
               f"contacts/{cid}/associations.json"], check=False)
    assert r.returncode == 0, r.stderr
    # sed's scratch file is gone
    assert not [n for n in os.listdir(m.p("contacts", cid)) if n.startswith("sed")]
    sync(m)
    assert "Billing contact" in server_types(sandbox, "contacts", cid, "companies",
                                             prim["id"]).values()
    assert len(posts(sandbox, LABEL_WRITE, since)) == 1


def test_undefined_label_fails_close_with_einval(sandbox, demo):
    m, cid, doc = demo
    prim = _company_with_primary(doc)
    prim["labels"].append("Arch nemesis")
    since = sandbox.last_seq()
    fd = os.open(m.p("contacts", cid, "associations.json"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, json.dumps(doc).encode())
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EINVAL
    line = [json.loads(l) for l in open(m.p(".hubfs", "errors.log"))
            if "associations.json" in l][-1]
    assert "Arch nemesis" in line["reason"] and "Billing contact" in line["reason"], line
    sync(m)
    assert not posts(sandbox, r"^/crm/v4/associations/", since)
    # the file shows the server's state again
    with open(m.p("contacts", cid, "associations.json")) as fh:
        assert "Arch nemesis" not in fh.read()


def test_entries_added_and_removed(sandbox, demo):
    """A new entry without labels is a default association, a removed one a
    removal of every type; ln -s and rm keep working beside the file."""
    m, cid, doc = demo
    have = {e["id"] for e in doc["deals"]}
    deal = next(f[:-5] for f in sorted(os.listdir(m.p("deals"))) if f[:-5] not in have)
    doc["deals"].append({"id": deal})
    gone = doc["companies"].pop(0)["id"] if len(doc["companies"]) > 1 else None
    since = sandbox.last_seq()
    with open(m.p("contacts", cid, "associations.json"), "w") as fh:
        json.dump({"deals": doc["deals"], "companies": doc["companies"]}, fh)
    assert f"{deal}.json" in os.listdir(m.p("contacts", cid, "deals"))
    sync(m)
    assert server_types(sandbox, "contacts", cid, "deals", deal)
    paths = [w["path"] for w in posts(sandbox, r"/batch/", since)]
    assert "/crm/v4/associations/contacts/deals/batch/associate/default" in paths
    if gone:
        assert not server_types(sandbox, "contacts", cid, "companies", gone)
        assert f"{gone}.json" not in os.listdir(m.p("contacts", cid, "companies"))
    os.unlink(m.p("contacts", cid, "deals", f"{deal}.json"))
    sync(m)
    assert not server_types(sandbox, "contacts", cid, "deals", deal)
    with open(m.p("contacts", cid, "associations.json")) as fh:
        assert deal not in {e["id"] for e in json.load(fh)["deals"]}


def test_every_associable_pair_and_a_custom_object_label(sandbox, hubfs):
    """With discovery, a record's directory has a directory per type it can
    be associated with (notes, calls, a custom object …), associations.json
    a key per such type, and a custom object's label (USER_DEFINED, the type
    addressed by its objectTypeId) lands like a core one."""
    sandbox.reset(demo=True)
    m = hubfs("writeback_delay_ms=200")
    cid = doc = None
    for f in sorted(os.listdir(m.p("contacts"))):
        with open(m.p("contacts", f[:-5], "associations.json")) as fh:
            d = json.load(fh)
        if d.get("notes") and d.get("cars"):
            cid, doc = f[:-5], d
            break
    assert cid, "the demo links no contact to both notes and cars"
    names = sorted(os.listdir(m.p("contacts", cid)))
    assert names == sorted(["associations.json"] + list(doc))
    assert "products" not in doc and "users" not in doc and "contacts" not in doc
    for key in ("notes", "calls", "cars"):
        assert sorted(f[:-5] for f in os.listdir(m.p("contacts", cid, key))) == \
            [e["id"] for e in doc[key]], key
    note = doc["notes"][0]["id"]
    assert os.readlink(m.p("contacts", cid, "notes", f"{note}.json")) == \
        f"../../../notes/{note}.json"
    car = doc["cars"][0]
    label = next(l for l in ("Test driver", "Owned car") if l not in car["labels"])
    car["labels"].append(label)
    with open(m.p("contacts", cid, "associations.json"), "w") as fh:
        json.dump({"cars": doc["cars"]}, fh)
    sync(m)
    types = server_types(sandbox, "contacts", cid, "2-4810001", car["id"])
    assert label in types.values(), types
    with open(m.p("schema", "labels", "contacts_to_cars.json")) as fh:
        assert {"Test driver", "Owned car"} <= set(json.load(fh)["labels"])


def test_removed_then_added_with_a_label_lands_in_order(sandbox, hubfs):
    """An association removed, then saved again with a label before anything
    was sent: the removal goes first, then the labeled add (sent the other
    way round the association would be gone)."""
    sandbox.reset(demo=True)
    m = hubfs("writeback_delay_ms=3000")
    for f in sorted(os.listdir(m.p("contacts"))):
        cid = f[:-5]
        p = m.p("contacts", cid, "associations.json")
        with open(p) as fh:
            doc = json.load(fh)
        if doc["deals"]:
            break
    deal = doc["deals"][0]["id"]
    since = sandbox.last_seq()
    with open(p, "w") as fh:
        json.dump({"deals": doc["deals"][1:]}, fh)
    assert f"{deal}.json" not in os.listdir(m.p("contacts", cid, "deals"))
    with open(p, "w") as fh:
        json.dump({"deals": doc["deals"][1:] + [{"id": deal, "labels": ["Decision maker"]}]}, fh)
    with open(p) as fh:
        now = {e["id"]: e["labels"] for e in json.load(fh)["deals"]}
    assert now[deal] == ["Decision maker"]
    sync(m)
    types = server_types(sandbox, "contacts", cid, "deals", deal)
    assert "Decision maker" in types.values(), types
    paths = [w["path"] for w in posts(sandbox, r"^/crm/v4/associations/contacts/deals/batch/",
                                      since)]
    assert paths == ["/crm/v4/associations/contacts/deals/batch/archive",
                     "/crm/v4/associations/contacts/deals/batch/create"], paths


@pytest.mark.parametrize("vimrc", ["", "set backup", "set backupcopy=no"])
def test_vim_adds_a_label(sandbox, demo, vimrc):
    m, cid, doc = demo
    prim = _company_with_primary(doc)
    path = m.p("contacts", cid, "associations.json")
    r = subprocess.run(["vim", "-u", "NONE", "-i", "NONE", "-es", "-c", vimrc or "set nocp",
                        "-c", r'/"Primary"$/s//"Primary", "Billing contact"/', "-c", "wq", path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    names = os.listdir(m.p("contacts", cid))
    assert "associations.json" in names and not [n for n in names if n.endswith("~")], names
    sync(m)
    assert "Billing contact" in server_types(sandbox, "contacts", cid, "companies",
                                             prim["id"]).values()
