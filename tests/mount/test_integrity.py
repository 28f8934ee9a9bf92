"""Nothing lost, nothing doubled: saves through a shared mapping, truncate(2)
of a path, two processes saving one record at once. Real syscalls on a real
mount; what lands is read back from the sandbox."""
import errno
import json
import mmap
import os
import re
import subprocess
import sys

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, start_mount

WRITES = r"/batch/(update|create|upsert|archive)$"
MODES = ["foreground", "daemon"]


def sync(m, ok=True):
    r = subprocess.run([HUBFS, "sync", m.path], capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def first_contact(m):
    return sorted(f for f in os.listdir(m.p("contacts")) if f.endswith(".json"))[0][:-5]


def errors(m):
    return [json.loads(x) for x in open(m.p(".hubfs", "errors.log")) if x.strip()]


def writes(sandbox):
    return [e for e in sandbox.log() if re.search(WRITES, e["path"])]


def same_length_edit(text, prop, letter):
    """text with prop's value replaced by a string of the same byte length."""
    mt = re.search(rb'"%s": (null|"[^"]*")' % prop.encode(), text)
    assert mt, text
    n = len(mt.group(1))
    val = letter * max(n - 2, 1) if n >= 3 else None
    assert val, mt.group(1)
    new = text[:mt.start(1)] + b'"' + val.encode() + b'"' + text[mt.end(1):]
    assert len(new) == len(text)
    return new, val


# --- shared writable mappings (item 2) ---------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_shared_mapping_edit_is_saved(sandbox, hubfs, mode):
    """mmap MAP_SHARED, change bytes, msync, munmap, close: the edit is
    validated, journaled and sent like any save."""
    m = start_mount(hubfs, mode, "writeback_delay_ms=300")
    cid = first_contact(m)
    path = m.p("contacts", f"{cid}.json")
    text = open(path, "rb").read()
    new, val = same_length_edit(text, "firstname", "M")
    fd = os.open(path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, len(text), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        mm[:] = new
        mm.flush()
        mm.close()
    finally:
        os.close(fd)
    assert os.getxattr(path, "user.hubfs.state") in (b"pending", b"clean")
    sync(m)
    assert sandbox.record("contacts", cid)["properties"]["firstname"] == val, api_calls(sandbox)
    assert json.load(open(path))["properties"]["firstname"] == val
    assert os.stat(path).st_size == len(open(path, "rb").read())
    assert os.getxattr(path, "user.hubfs.state") == b"clean"


@pytest.mark.parametrize("mode", MODES)
def test_shared_mapping_edit_closed_early_is_saved(sandbox, hubfs, mode):
    """The descriptor is closed before the mapping is written: the kernel
    writes the page back at munmap/msync time; it is still a save."""
    m = start_mount(hubfs, mode, "writeback_delay_ms=300")
    cid = first_contact(m)
    path = m.p("contacts", f"{cid}.json")
    text = open(path, "rb").read()
    new, val = same_length_edit(text, "lastname", "Q")
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, len(text), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    mm[:] = new
    mm.flush()
    mm.close()
    sync(m)
    assert sandbox.record("contacts", cid)["properties"]["lastname"] == val, api_calls(sandbox)


@pytest.mark.parametrize("mode", MODES)
def test_bad_shared_mapping_edit_is_refused(sandbox, hubfs, mode):
    """An invalid save through a mapping fails msync/close, is logged and
    kept, sends nothing, and the file shows HubSpot's version again."""
    m = start_mount(hubfs, mode, "writeback_delay_ms=300", allow=("error",))
    cid = first_contact(m)
    path = m.p("contacts", f"{cid}.json")
    text = open(path, "rb").read()
    bad = b"[" + text[1:]
    sandbox.clear_log()
    fd = os.open(path, os.O_RDWR)
    failed = []
    mm = mmap.mmap(fd, len(text), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    mm[:] = bad
    try:
        mm.flush()
    except OSError as e:
        failed.append(e.errno)
    mm.close()
    try:
        os.close(fd)
    except OSError as e:
        failed.append(e.errno)
    assert failed and set(failed) <= {errno.EINVAL, errno.EIO}, failed
    line = [e for e in errors(m) if e.get("file") == f"contacts/{cid}.json"][-1]
    assert line["rejected"] in os.listdir(m.p(".hubfs", "rejected"))
    sync(m)
    assert writes(sandbox) == [], api_calls(sandbox)
    assert open(path, "rb").read() == text


# --- truncate(2) of a path (item 3) ---------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_truncate_of_a_path_leaves_no_orphan(sandbox, hubfs, mode):
    m = start_mount(hubfs, mode, "writeback_delay_ms=300", allow=("error",))
    cid = first_contact(m)
    path = m.p("contacts", f"{cid}.json")
    text = open(path, "rb").read()
    sandbox.clear_log()
    with pytest.raises(OSError) as ei:
        os.truncate(path, 0)
    assert ei.value.errno == errno.EINVAL
    assert any(e.get("file") == f"contacts/{cid}.json" and "empty" in e["reason"] for e in errors(m))
    # the record is whole: content, size, and an editor can still save it
    assert open(path, "rb").read() == text
    assert os.stat(path).st_size == len(text)
    os.truncate(path, len(text))  # same size: nothing changes, nothing sent
    m.run(["sed", "-i", 's/"jobtitle": [^,]*/"jobtitle": "After Truncate"/', f"contacts/{cid}.json"])
    sync(m)
    assert sandbox.record("contacts", cid)["properties"]["jobtitle"] == "After Truncate"
    assert len([e for e in writes(sandbox)]) == 1, api_calls(sandbox)
    assert json.load(open(path))["properties"]["jobtitle"] == "After Truncate"


# --- two processes saving one record (item 5) -----------------------------------------

WRITER = r"""
import os, sys
path, first, second = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
os.write(fd, first)
print("ready", flush=True)
sys.stdin.readline()
os.write(fd, second)
try:
    os.close(fd)
    print("closed 0", flush=True)
except OSError as e:
    print("closed", e.errno, flush=True)
"""


def test_second_writer_cannot_reset_the_first(sandbox, hubfs):
    m = hubfs("writeback_delay_ms=300", allow=("error",))
    cid = first_contact(m)
    path = m.p("contacts", f"{cid}.json")
    rec = json.load(open(path))
    rec["properties"]["jobtitle"] = "First Writer"
    good = json.dumps(rec, indent=2) + "\n"
    half = len(good) // 2
    p = subprocess.Popen([sys.executable, "-c", WRITER, path, good[:half], good[half:]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        # a second process (this one) while the first holds the record
        with pytest.raises(OSError) as ei:
            os.open(path, os.O_WRONLY | os.O_TRUNC)
        assert ei.value.errno == errno.EBUSY
        fd = os.open(path, os.O_WRONLY)
        try:
            with pytest.raises(OSError) as ei:
                os.write(fd, b"not json at all")
            assert ei.value.errno == errno.EBUSY
        finally:
            os.close(fd)
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "closed 0"
    finally:
        p.kill()
        p.wait()
    assert any("another process" in e["reason"] for e in errors(m))
    sync(m)
    assert sandbox.record("contacts", cid)["properties"]["jobtitle"] == "First Writer"


def test_inherited_descriptor_is_one_save(sandbox, hubfs):
    """A shell that opens the record and hands the descriptor to commands:
    one save, committed when the last of them closes it."""
    m = hubfs("writeback_delay_ms=300")
    cid = first_contact(m)
    rec = json.load(open(m.p("contacts", f"{cid}.json")))
    rec["properties"]["jobtitle"] = "Handed Down"
    text = json.dumps(rec, indent=2) + "\n"
    head, tail = text[:len(text) // 2], text[len(text) // 2:]
    src = m.path + "/../parts"
    os.makedirs(src, exist_ok=True)
    open(os.path.join(src, "head"), "w").write(head)
    open(os.path.join(src, "tail"), "w").write(tail)
    m.run(f"exec 3>contacts/{cid}.json; cat {src}/head >&3; cat {src}/tail >&3; exec 3>&-",
          executable="/bin/bash")
    sync(m)
    assert sandbox.record("contacts", cid)["properties"]["jobtitle"] == "Handed Down"
