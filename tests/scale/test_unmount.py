"""Scale: unmounting while a 100,000-record relist runs in the background
(REVIEW §3.2). The stop goes ahead of the queued refreshes and the relist
ends after the page in flight: the daemon exits within drain_timeout and a
few seconds, and at most that one list page is answered after the unmount.
(Before, the relist ran to its end first: about two minutes of list calls at
100/10s, each page with its own 120 s deadline.)"""
import os
import signal
import time

import pytest

from tests.scale.conftest import SCALE_SIZES, report

pytestmark = pytest.mark.scale

DRAIN = 5


def test_unmount_during_a_100k_relist(sandbox, hubfs):
    n = SCALE_SIZES["contacts"]
    m = hubfs("relist_interval=1", "drain_timeout=%d" % DRAIN)
    t0 = time.monotonic()
    r = m.run(["ls", "contacts"], timeout=900)
    assert len([x for x in r.stdout.split() if x.endswith(".json")]) == n
    report("unmount: `ls contacts` of %d: %.0f s" % (n, time.monotonic() - t0))
    time.sleep(1.5)                       # past relist_interval
    os.listdir(m.p("contacts"))           # served as is; the relist starts behind it
    m.signal(signal.SIGHUP)               # and every type's refresh is queued behind that
    pages = lambda s: [e for e in sandbox.log(since=s)  # noqa: E731
                       if e["endpoint"] == "GET /crm/v3/objects/contacts"]
    s_relist = sandbox.last_seq()
    deadline = time.monotonic() + 60
    while len(pages(s_relist)) < 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(pages(s_relist)) >= 20, "the relist did not get going"
    s0 = sandbox.last_seq()
    t1 = time.monotonic()
    m.unmount()                           # fusermount3 -u; requires exit 0, clean stderr
    took = time.monotonic() - t1
    after = sandbox.log(since=s0)
    late = [e for e in after if e["endpoint"] == "GET /crm/v3/objects/contacts"]
    searches = [e for e in after if e["endpoint"].endswith("/search")]
    report("unmount: during a relist (%d pages in): daemon gone %.1f s after fusermount3 -u "
           "(drain_timeout %d s); after it: %d list page(s), %d search(es)"
           % (len(pages(s_relist)) - len(late), took, DRAIN, len(late), len(searches)))
    assert len(late) <= 1 and not searches, [e["endpoint"] for e in after]
