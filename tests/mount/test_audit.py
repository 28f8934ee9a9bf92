"""The audit view (-o audit_view=PATH): one daemon serves the mount and a
read-only twin of it, from the same cache and API budget. The view lists and
reads what the mount does, refuses every write with EROFS, costs no FLUSH
round trip per close() (the main mount keeps its close-time check), shows a
change made through the main mount at once, and is mounted and unmounted with
the main mount, in both mount modes (the default background daemon and -f).
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import start_mount

MODES = ["daemon", "foreground"]
FUSE_FLUSH = 25


def view_dir(tmp_path):
    v = tmp_path / "view"
    v.mkdir()
    return str(v)


def first_record(m):
    names = sorted(n for n in os.listdir(m.p("contacts")) if n.endswith(".json"))
    return names[0], names


def expect_errno(code, fn, *a):
    with pytest.raises(OSError) as e:
        fn(*a)
    assert e.value.errno == code, f"{fn.__name__}{a}: {errno.errorcode.get(e.value.errno)}"


def flushes(pid, fn):
    """FUSE FLUSH requests daemon pid reads from /dev/fuse while fn() runs
    (strace of the daemon; None without strace)."""
    if not shutil.which("strace"):
        return None
    fd, out = tempfile.mkstemp(prefix="hubfs-audit-strace-")
    os.close(fd)
    st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=read", "-P", "/dev/fuse", "-xx",
                           "-s", "8", "-o", out, "-p", str(pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)                       # attached to every thread
        fn()
        time.sleep(0.3)
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(timeout=10)
    n = 0
    with open(out) as f:
        for line in f:
            m = re.search(r'"((?:\\x[0-9a-f]{2}){8})"(?:\.\.\.)?, \d+\) = \d+', line)
            if m:
                b = bytes(int(h, 16) for h in m.group(1).split("\\x")[1:])
                n += int.from_bytes(b[4:8], "little") == FUSE_FLUSH
    os.unlink(out)
    return n


@pytest.mark.parametrize("mode", MODES)
def test_view_reads_the_mount_and_refuses_writes(sandbox, hubfs, tmp_path, mode):
    view = view_dir(tmp_path)
    m = start_mount(hubfs, mode, "audit_view=" + view)
    assert os.path.ismount(view)
    first, names = first_record(m)

    # the same listing and bytes; modes without write bits
    assert sorted(n for n in os.listdir(os.path.join(view, "contacts"))
                  if n.endswith(".json")) == names
    with open(m.p("contacts", first), "rb") as a, \
            open(os.path.join(view, "contacts", first), "rb") as b:
        assert a.read() == b.read()
    assert os.stat(m.p("contacts", first)).st_mode & 0o200
    assert os.stat(os.path.join(view, "contacts", first)).st_mode & 0o222 == 0
    # query directories and .hubfs too
    q = "lifecyclestage=customer"
    assert sorted(os.listdir(os.path.join(view, "search", "contacts", q))) == \
        sorted(os.listdir(m.p("search", "contacts", q)))
    with open(os.path.join(view, ".hubfs", "status.json")) as f:
        assert isinstance(json.load(f), dict)

    # every write fails with EROFS and reaches HubSpot never
    s0 = sandbox.last_seq()
    rec = os.path.join(view, "contacts", first)
    expect_errno(errno.EROFS, open, rec, "w")
    expect_errno(errno.EROFS, open, rec, "r+")
    expect_errno(errno.EROFS, os.truncate, rec, 0)
    expect_errno(errno.EROFS, os.unlink, rec)
    expect_errno(errno.EROFS, os.rename, rec, rec + ".bak")
    expect_errno(errno.EROFS, os.mkdir, os.path.join(view, "contacts", "x"))
    expect_errno(errno.EROFS, open, os.path.join(view, "contacts", "_new", "a.json"), "w")
    expect_errno(errno.EROFS, os.setxattr, rec, "user.x", b"1")
    expect_errno(errno.EROFS, open, os.path.join(view, ".hubfs", "ctl"), "w")
    expect_errno(errno.EROFS, os.utime, rec)
    assert [e for e in sandbox.log(since=s0) if e["method"] != "GET"
            and not e["path"].endswith("/search")] == []

    # a change through the main mount shows in the view at once
    with open(m.p("contacts", first)) as f:
        rec_json = json.load(f)
    rec_json["properties"]["jobtitle"] = "Audited Twin"
    with open(m.p("contacts", first), "w") as f:
        json.dump(rec_json, f, indent=2)
    with open(rec) as f:
        assert json.load(f)["properties"]["jobtitle"] == "Audited Twin"
    # ... and a save the main mount refuses still fails its close()
    with pytest.raises(OSError) as e:
        with open(m.p("contacts", first), "w") as f:
            f.write("{ not json")
    assert e.value.errno == errno.EINVAL

    # the view goes with the main mount
    m.unmount()
    assert not os.path.ismount(view)


def test_view_costs_no_flush_per_close(sandbox, hubfs, tmp_path):
    view = view_dir(tmp_path)
    m = hubfs("audit_view=" + view)
    _, names = first_record(m)
    files = names[:40]

    def cat(root):
        for n in files:
            with open(os.path.join(root, "contacts", n), "rb") as f:
                f.read()

    cat(view)                    # the view's first FLUSH is answered ENOSYS
    cat(m.path)
    s0 = sandbox.last_seq()
    n_view = flushes(m.pid, lambda: cat(view))
    if n_view is None:
        pytest.skip("strace is not installed")
    n_main = flushes(m.pid, lambda: cat(m.path))
    assert n_view == 0
    assert n_main >= len(files)  # the main mount checks saves at close()
    assert sandbox.log(since=s0) == []


@pytest.mark.parametrize("mode", MODES)
def test_view_goes_when_the_daemon_stops(sandbox, hubfs, tmp_path, mode):
    """SIGTERM (systemctl stop) ends both mounts; the daemon exits 0, also
    with a process still inside the view."""
    view = view_dir(tmp_path)
    m = start_mount(hubfs, mode, "audit_view=" + view)
    holder = subprocess.Popen(["sleep", "60"], cwd=os.path.join(view, "contacts"))
    try:
        m.signal(signal.SIGTERM)
        assert m.wait_exit(30) == 0
        assert not os.path.ismount(view) and not os.path.ismount(m.path)
        m.unmounted = True
    finally:
        holder.kill()
        holder.wait()


def test_view_unmounted_alone_leaves_the_mount_serving(sandbox, hubfs, tmp_path):
    view = view_dir(tmp_path)
    m = hubfs("audit_view=" + view)
    subprocess.run(["fusermount3", "-u", view], check=True)
    assert not os.path.ismount(view)
    first, _ = first_record(m)
    with open(m.p("contacts", first)) as f:
        assert json.load(f)["id"] == first[:-5]


@pytest.mark.parametrize("mode", MODES)
def test_bad_view_fails_the_mount(sandbox, hubfs, tmp_path, mode):
    """The view is checked before anything is mounted; the command (also the
    background one, through its startup pipe) exits non-zero with the reason."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (mnt / "sub").mkdir()
    afile = tmp_path / "file"
    afile.write_text("x")
    env = dict(os.environ, HUBSPOT_TOKEN=sandbox.token, XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    for bad, why in ((tmp_path / "missing", "No such file"), (afile, "not a directory"),
                     (mnt, "mountpoint itself"), (mnt / "sub", "hold one another")):
        args = [HUBFS] + (["-f"] if mode == "foreground" else []) + \
            ["-o", "api_url=" + sandbox.url, "-o", f"audit_view={bad}", str(mnt)]
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and why in r.stderr, r.stderr
        assert not os.path.ismount(mnt)
