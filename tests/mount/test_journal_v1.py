"""A journal an earlier hubfs left with queued edits, from before object types
were keyed by objectTypeId (journal version 1: types stored as 0..3 for
contacts, companies, deals, tickets). The mount migrates it and every edit
lands: an update, a create, an archive, an association added and one removed.
"""
import os
import sqlite3
import subprocess
import time

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, count

# The version-1 schema, exactly as hubfs created it.
V1_SQL = """
CREATE TABLE ops (seq INTEGER PRIMARY KEY AUTOINCREMENT,
 kind TEXT NOT NULL CHECK (kind IN ('update','create','archive','assoc_add','assoc_del')),
 type INTEGER NOT NULL, rec_id INTEGER NOT NULL DEFAULT 0, key TEXT,
 props TEXT, base TEXT, to_type INTEGER NOT NULL DEFAULT -1, to_id INTEGER NOT NULL DEFAULT 0,
 state TEXT NOT NULL DEFAULT 'pending'
  CHECK (state IN ('pending','in_flight','failed','conflict','in_doubt')),
 attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
 created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0,
 epoch INTEGER NOT NULL DEFAULT 0);
CREATE INDEX ops_rec ON ops(type, rec_id, kind, state);
CREATE INDEX ops_state ON ops(state, type);
PRAGMA user_version = 1;
"""
CONTACTS, COMPANIES, DEALS, TICKETS = 0, 1, 2, 3
ALLOW = ("journal holds operations",)


def first_ids(sandbox, t, n):
    res = sandbox.api("GET", f"/crm/v3/objects/{t}", query={"limit": 100}).json()["results"]
    return sorted((r["id"] for r in res), key=int)[:n]


def plant_v1(d, rows):
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    db = sqlite3.connect(d / "journal.db")
    db.executescript(V1_SQL)
    now = int(time.time() * 1000)
    for r in rows:
        cols = ["created_ms", "updated_ms"] + list(r)
        db.execute(f"INSERT INTO ops ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                   [now, now] + list(r.values()))
    db.commit()
    db.close()
    os.chmod(d / "journal.db", 0o600)


def user_version(d):
    db = sqlite3.connect(d / "journal.db")
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_v1_journal_migrates_and_lands(sandbox, hubfs, tmp_path):
    c1, c2 = first_ids(sandbox, "contacts", 2)
    co = first_ids(sandbox, "companies", 1)[0]
    t1 = first_ids(sandbox, "tickets", 1)[0]
    d1 = first_ids(sandbox, "deals", 1)[0]
    sandbox.associate("deals", d1, "contacts", c2)
    assert c2 in sandbox.record("deals", d1)["associations"].get("contacts", {})
    state = tmp_path / "state" / "hubfs" / str(sandbox.portal_id)
    plant_v1(state, [
        {"kind": "update", "type": CONTACTS, "rec_id": int(c1),
         "props": '{"jobtitle": "Migrated Title"}', "base": "{}"},
        {"kind": "create", "type": DEALS, "key": "v1 deal.json#1",
         "props": '{"dealname": "Deal From V1", "dealstage": "appointmentscheduled"}'},
        {"kind": "archive", "type": TICKETS, "rec_id": int(t1)},
        {"kind": "assoc_add", "type": CONTACTS, "rec_id": int(c1), "to_type": COMPANIES,
         "to_id": int(co)},
        {"kind": "assoc_del", "type": DEALS, "rec_id": int(d1), "to_type": CONTACTS,
         "to_id": int(c2)},
    ])
    m = hubfs("writeback_delay_ms=200", allow=ALLOW)
    r = subprocess.run([HUBFS, "sync", m.path], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + m.stderr()[-3000:]
    with open(m.p(".hubfs", "queue")) as f:
        assert f.read() == ""

    assert sandbox.record("contacts", c1)["properties"]["jobtitle"] == "Migrated Title"
    sandbox.flush_index()
    found = sandbox.api("POST", "/crm/v3/objects/deals/search", {
        "filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "EQ",
                                       "value": "Deal From V1"}]}],
        "properties": ["dealname", "dealstage"], "limit": 10}).json()["results"]
    assert len(found) == 1, found
    assert found[0]["properties"]["dealstage"] == "appointmentscheduled"
    assert sandbox.record("tickets", t1)["archived"] is True
    assert co in sandbox.record("contacts", c1)["associations"].get("companies", {})
    assert c2 not in sandbox.record("deals", d1)["associations"].get("contacts", {})
    # Each sent once, through the usual batch endpoints.
    assert count(sandbox, "POST", r"^/crm/v3/objects/deals/batch/create") == 1, api_calls(sandbox)
    assert count(sandbox, "POST", r"^/crm/v3/objects/tickets/batch/archive") == 1, api_calls(sandbox)
    assert count(sandbox, "POST", r"^/crm/v3/objects/contacts/batch/update") == 1, api_calls(sandbox)
    m.unmount()
    assert user_version(state) == 2
