"""Scale: a query directory with more matches than HubSpot's real search cap
(10,000 results a query) over the 100,000-contact account lists every match,
windowing on hs_object_id, in at most ceil(N/200) + ceil(N/10,000) - 1 search
calls (tests/mount/test_bigquery.py runs the same code with a lowered cap)."""
import math
import os
import time

import pytest

from tests.mount.util import calls
from tests.scale.conftest import report

pytestmark = pytest.mark.scale

QUERY = "lifecyclestage=customer"


def test_query_directory_past_ten_thousand(sandbox, hubfs):
    r = sandbox.api("POST", "/crm/v3/objects/contacts/search", {
        "filterGroups": [{"filters": [{"propertyName": "lifecyclestage", "operator": "EQ",
                                       "value": "customer"}]}], "limit": 1})
    total = r.json()["total"]
    assert total > 10000, "the account must hold more matches than one search window"
    m = hubfs("op_timeout=120")
    s0 = sandbox.last_seq()
    t0 = time.monotonic()
    names = os.listdir(m.p("search", "contacts", QUERY))
    wall = time.monotonic() - t0
    searches = calls(sandbox, "POST", r"^/crm/v3/objects/contacts/search$", since=s0)
    bar = math.ceil(total / 200) + math.ceil(total / 10000) - 1
    report("query directory: %d of %d matches listed, %d search calls (bar %d), %.1f s"
           % (len(names), total, len(searches), bar, wall))
    assert len(names) == total == len(set(names))
    assert len(searches) <= bar
