"""The default mount: hubfs without -f, as the README starts it.

The command forks the daemon and returns once the mount serves; everything the
mount needs (refresh worker, batcher, SIGHUP thread, journal lock) lives in the
daemon. A second mount of the same portal is refused; startup errors reach the
caller's stderr with a non-zero exit. API calls counted from the sandbox log.
"""
import glob
import json
import os
import signal
import subprocess
import time

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, count, first_contact
from tests.mount import util

SEARCH = r"^/crm/v3/objects/(contacts|companies|deals|tickets)/search$"


def wait_for(fn, timeout=20, step=0.2):
    return util.wait_for(fn, timeout, step)


def prop(m, rid, name):
    with open(m.p("contacts", f"{rid}.json")) as f:
        return json.load(f)["properties"].get(name)


def test_readme_sequence_on_background_mount(sandbox, hubfs):
    """hubfs MNT; sed -i a record; hubfs sync MNT returns 0 and HubSpot has
    the value (REVIEW §3.1: the batcher was left in the parent)."""
    m = hubfs("writeback_delay_ms=500")
    assert m.daemon and m.proc.returncode == 0
    assert m.pid != m.proc.pid, "the mount must be served by the forked daemon"
    rid = first_contact(m)
    m.run(["sed", "-i", 's/"jobtitle": [^,]*/"jobtitle": "Background Hero"/',
           f"contacts/{rid}.json"])
    assert prop(m, rid, "jobtitle") == "Background Hero"
    # Before the fix this waited forever ("still sending, waiting…").
    r = subprocess.run([HUBFS, "sync", m.path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert sandbox.record("contacts", rid)["properties"]["jobtitle"] == "Background Hero"
    assert count(sandbox, "POST", r"^/crm/v3/objects/contacts/batch/update$") == 1, \
        api_calls(sandbox)
    # Threads live in the daemon: at least the refresh worker, the batcher,
    # the SIGHUP and invalidation threads beside the FUSE loop.
    assert len(os.listdir(f"/proc/{m.pid}/task")) >= 5


def test_remote_change_after_ttl_and_sighup(sandbox, hubfs):
    """A remote change shows after ttl plus one refresh (one search), and
    kill -HUP refreshes at once, on a background mount."""
    m = hubfs("ttl=2", "index_delay=1")
    sandbox.configure(index_delay=1)
    rid = first_contact(m)
    old = prop(m, rid, "jobtitle")
    sandbox.update("contacts", rid, {"jobtitle": "Changed Remotely"})
    time.sleep(2.5)  # past ttl and the sandbox's index delay
    sandbox.clear_log()
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Changed Remotely"), api_calls(sandbox)
    assert count(sandbox, "POST", r"^/crm/v3/objects/contacts/search$") == 1, api_calls(sandbox)
    assert old != "Changed Remotely"


def test_sighup_refreshes_background_mount(sandbox, hubfs):
    m = hubfs("ttl=600", "index_delay=1")
    sandbox.configure(index_delay=1)
    rid = first_contact(m)
    sandbox.update("contacts", rid, {"jobtitle": "Hupped"})
    time.sleep(1.5)  # searchable now
    assert prop(m, rid, "jobtitle") != "Hupped"   # ttl=600: cached
    sandbox.clear_log()
    m.signal(signal.SIGHUP)
    assert wait_for(lambda: prop(m, rid, "jobtitle") == "Hupped"), api_calls(sandbox)
    # One refresh search for the one type this mount ever read.
    assert count(sandbox, "POST", SEARCH) == 1, api_calls(sandbox)
    assert "SIGHUP: refreshing every type" in m.stderr()


def test_second_mount_of_portal_refused(sandbox, hubfs):
    """Same portal and state directory: refused with a clear message, in the
    background and with -f; the first mount is untouched."""
    m = hubfs()
    for fg in (False, True):
        second = hubfs(foreground=fg, wait=False)
        assert second.proc.wait(timeout=30) != 0
        second.unmounted = True
        err = second.stderr()
        assert "already mounted on " + os.path.realpath(m.path) in err, err
        assert f"pid {m.pid}" in err, err
        assert not os.path.ismount(second.path)
    assert first_contact(m)
    r = subprocess.run([HUBFS, "sync", m.path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_startup_error_exits_nonzero_with_message(sandbox, hubfs):
    m = hubfs(token="pat-na1-wrong", wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True
    assert "cannot reach HubSpot" in m.stderr() and "Permission denied" in m.stderr()
    assert not os.path.ismount(m.path)


def test_daemon_messages_go_to_state_log_when_stderr_is_a_pipe(sandbox, hubfs, tmp_path):
    """A caller capturing stderr through a pipe gets the command's exit once
    the mount serves (the daemon does not keep the pipe open); the daemon's
    later messages go to $XDG_STATE_HOME/hubfs/<portal>/hubfs.log."""
    mnt = tmp_path / "piped"
    mnt.mkdir()
    env = dict(os.environ, HUBSPOT_TOKEN=sandbox.token,
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    r = subprocess.run([HUBFS, "-o", f"api_url={sandbox.url}", str(mnt)], env=env,
                       capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0 and os.path.ismount(mnt), r.stderr
        with open(mnt / ".hubfs" / "status.json") as f:
            pid = json.load(f)["pid"]
        os.kill(pid, signal.SIGHUP)
        log = os.path.join(tmp_path, "state", "hubfs", str(sandbox.portal_id), "hubfs.log")
        assert wait_for(lambda: os.path.exists(log) and "SIGHUP" in open(log).read(), 10)
        assert oct(os.stat(log).st_mode & 0o777) == "0o600"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    # The fixture's subreaper collects the daemon: it exits 0 after the unmount.
    from tests.mount.conftest import wait_pid
    assert wait_pid(pid, 60) == 0
    assert not glob.glob(str(tmp_path / "state" / "hubfs" / "*" / "journal.db-journal"))


def test_unmount_stops_relist_and_queued_refreshes(sandbox, hubfs):
    """Unmounting during a background relist: the stop goes ahead of the
    queued refreshes and the relist ends after its current page (REVIEW
    §3.2: before, every queued relist and refresh ran first, each page with a
    fresh 120 s deadline). Counted: list and search calls after the unmount."""
    sandbox.reset(contacts=3000, companies=5, deals=5, tickets=5)
    m = hubfs("relist_interval=1", "ttl=600", "drain_timeout=2")
    assert len(os.listdir(m.p("contacts"))) >= 3000
    os.listdir(m.p("companies"))
    sandbox.configure(latency_ms=300)       # a 30-page relist now takes ~9 s
    time.sleep(1.2)                         # past relist_interval
    os.listdir(m.p("contacts"))             # served as is; relist queued behind it
    m.signal(signal.SIGHUP)                 # refreshes queued behind the relist
    listed = lambda: count(sandbox, "GET", r"^/crm/v3/objects/contacts$")  # noqa: E731
    before = listed()
    assert wait_for(lambda: listed() >= before + 2, 15), api_calls(sandbox)
    seq = sandbox.last_seq()
    m.unmount()                             # fusermount3 -u; the daemon exits 0
    after = sandbox.log(since=seq)
    pages = [e for e in after if e["path"] == "/crm/v3/objects/contacts"]
    searches = [e for e in after if e["path"].endswith("/search")]
    # At most the page that was in flight when the unmount came.
    assert len(pages) <= 1 and not searches, api_calls(sandbox)
