"""The cache kept on disk ($XDG_CACHE_HOME/hubfs/<portal-id>/cache.db): a
remount lists from disk with no list call and catches up with one search from
the saved sync mark; damaged or foreign files are discarded with one line;
kill -9 never leaves wrong bytes; drop-cache and cache=memory; modes 0700/0600;
records evicted from memory come back from disk. API calls counted from the
sandbox's request log."""
import glob
import json
import os
import signal
import sqlite3
import stat
import time

import pytest

from tests.mount.util import api_calls, count, start_mount

LIST = r"^/crm/v3/objects/contacts$"
SEARCH = r"^/crm/v3/objects/contacts/search$"
BATCH = r"^/crm/v3/objects/contacts/batch/read$"
MODES = ["daemon", "foreground"]


def wait_for(fn, timeout=20, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def cache_dir(m):
    (d,) = glob.glob(os.path.join(os.path.dirname(m.state), "cache", "hubfs", "*"))
    return d


def read_all(m, t="contacts"):
    out = {}
    for f in os.listdir(m.p(t)):
        if f.endswith(".json"):
            with open(m.p(t, f)) as fh:
                out[f[:-5]] = json.load(fh)
    return out


def api_record(sandbox, rid, props):
    r = sandbox.api("GET", f"/crm/v3/objects/contacts/{rid}",
                    query={"properties": ",".join(props)})
    return r.json()


def errors_log(m):
    with open(m.p(".hubfs", "errors.log")) as f:
        return [json.loads(line) for line in f if line.strip()]


def ls_l(m, t="contacts"):
    """The record lines of `ls -l t`."""
    return [ln for ln in m.run(["ls", "-l", t]).stdout.splitlines() if ln.endswith(".json")]


def first_mount(sandbox, hubfs, mode="daemon", *opts):
    """Mount, list contacts whole, unmount: the disk holds the listing."""
    m = start_mount(hubfs, mode, *opts)
    n = len(ls_l(m))
    m.unmount()
    return n


@pytest.mark.parametrize("mode", MODES)
def test_remount_lists_from_disk_without_a_list_call(sandbox, hubfs, mode):
    sandbox.reset(contacts=300, companies=5, deals=5, tickets=5)
    n = first_mount(sandbox, hubfs, mode, "ttl=2")
    assert n == 300
    sandbox.clear_log()
    m = start_mount(hubfs, mode, "ttl=2")
    lines = ls_l(m)
    assert len(lines) == 300
    assert count(sandbox, "GET", LIST) == 0, api_calls(sandbox)
    got = read_all(m)
    assert len(got) == 300
    assert count(sandbox, "GET", LIST) == 0, api_calls(sandbox)
    assert count(sandbox, "POST", BATCH) == 0, api_calls(sandbox)
    # caught up by one search from the saved mark (nothing changed)
    assert wait_for(lambda: m.status()["types"]["contacts"].get("catch_up", {}).get("done"))
    cu = m.status()["types"]["contacts"]["catch_up"]
    assert cu["way"] == "refresh" and cu["calls"] == 1 and cu["changes"] == 0, cu
    assert count(sandbox, "POST", SEARCH) == 1, api_calls(sandbox)
    assert m.status()["types"]["contacts"]["from_disk"] is True
    out = m.run(["hubfs", "status", m.path] if False else [os.environ.get("HUBFS_BIN") or
                 os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
                     os.path.abspath(__file__)))), "build", "hubfs"), "status", m.path]).stdout
    assert "caught up after remount by refresh" in out, out
    assert "disk cache:" in out, out
