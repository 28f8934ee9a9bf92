"""Query directories past HubSpot's search cap: HubSpot's search hands out
the first 10,000 results of a query and refuses a page past them (400);
`search/<type>/<query>/` lists every match all the same, by windowing on
hs_object_id (results sorted by it ascending; once a window reaches the cap
the next one adds hs_object_id > the last id seen to every group).

The sandbox's cap is lowered (search_cap) so a few hundred records cover
several windows; the same code path runs at 10,000 (tests/scale/test_bigquery.py
and scripts/bench). Cost: at most ceil(N/200) + ceil(N/cap) - 1 search calls
for N matches (a page of 200 each, plus the one refused page that ends each
window but the last).
"""
import json
import math
import os

from tests.mount.util import api_calls, calls

CAP = 400
SEARCH = r"^/crm/v3/objects/contacts/search$"


def contacts_by(sandbox, prop):
    """{id: value of prop} of every contact, read by listing (not search)."""
    out, after = {}, None
    while True:
        q = {"limit": 100, "properties": prop}
        if after:
            q["after"] = after
        page = sandbox.api("GET", "/crm/v3/objects/contacts", query=q).json()
        for r in page["results"]:
            out[r["id"]] = r["properties"].get(prop)
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


def listed(m, query):
    names = os.listdir(m.p("search", "contacts", query))
    assert all(n.endswith(".json") for n in names), names[:5]
    return sorted(n[:-5] for n in names)


def bar(n, cap=CAP):
    return math.ceil(n / 200) + math.ceil(n / cap) - 1


def test_query_past_the_cap_lists_every_match(sandbox, hubfs):
    sandbox.configure(search_cap=CAP)
    stages = contacts_by(sandbox, "lifecyclestage")
    everyone = sorted(stages)
    two = sorted(i for i, v in stages.items() if v in ("lead", "customer"))
    assert len(everyone) == 1000 and CAP < len(two) < len(everyone)
    m = hubfs()

    # every contact: three windows of 400, 400 and 200
    s0 = sandbox.last_seq()
    got = listed(m, "createdate?")
    searches = calls(sandbox, "POST", SEARCH, since=s0)
    assert got == everyone
    assert len(searches) <= bar(len(everyone)), api_calls(sandbox)
    # a window past the first asks hs_object_id > the last id of the one before
    refused = [e for e in searches if e["status"] == 400]
    assert len(refused) == math.ceil(len(everyone) / CAP) - 1

    # two OR'ed groups: the window bound goes into each
    s0 = sandbox.last_seq()
    got = listed(m, "lifecyclestage=lead|lifecyclestage=customer")
    searches = calls(sandbox, "POST", SEARCH, since=s0)
    assert got == two
    assert len(searches) <= bar(len(two)), api_calls(sandbox)

    # a lookup in the listing past the first window finds its record
    last = two[-1]
    with open(m.p("search", "contacts", "lifecyclestage=lead|lifecyclestage=customer",
                  last + ".json")) as f:
        assert json.load(f)["id"] == last


def test_query_without_room_for_the_window_lists_the_first_cap_and_says_so(sandbox, hubfs):
    """Six conditions in a group leave no room for the window's condition
    (HubSpot allows 6): the first cap of matches is listed, errors.log says why."""
    sandbox.configure(search_cap=CAP)
    m = hubfs()
    q = "createdate?&email?&firstname?&lastname?&lastmodifieddate?&lifecyclestage?"
    s0 = sandbox.last_seq()
    got = listed(m, q)
    assert len(got) == CAP
    assert len(calls(sandbox, "POST", SEARCH, since=s0)) == CAP // 200 + 1
    with open(m.p(".hubfs", "errors.log")) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    mine = [x for x in lines if x.get("file") == "search/contacts/" + q]
    assert mine and "listing the first %d" % CAP in mine[-1]["reason"], lines


def test_query_too_large_for_one_op_timeout_goes_on_where_it_stopped(sandbox, hubfs):
    """Each `ls` may wait op_timeout at most. A query whose pages take longer
    fails that `ls`, but keeps what it fetched: the next `ls` (within ttl)
    goes on from there, so a few tries list every match and no page is asked
    for twice but the ones cut off by a deadline."""
    sandbox.configure(search_cap=CAP)
    everyone = sorted(contacts_by(sandbox, "lifecyclestage"))
    sandbox.configure(latency_ms=300)
    m = hubfs("op_timeout=1")
    qdir = m.p("search", "contacts", "createdate?")
    s0 = sandbox.last_seq()
    failed, got = [], None
    for _ in range(12):
        try:
            got = sorted(n[:-5] for n in os.listdir(qdir))
            break
        except OSError as e:
            failed.append(e.errno)
    assert got == everyone, f"after {len(failed)} failed tries: {failed}"
    assert failed, "the query fit in one op_timeout: the test proves nothing"
    searches = calls(sandbox, "POST", SEARCH, since=s0)
    assert len(searches) <= bar(len(everyone)) + len(failed), api_calls(sandbox)
    with open(m.p(".hubfs", "errors.log")) as f:
        assert "list again within ttl to go on" in f.read()
