"""The commands besides mounting: `hubfs --version`, `hubfs status` (summary,
--json, --watch with a cold listing's progress) and `hubfs sync` (a progress
line on a terminal, driven here through tmux, plain lines otherwise), and their
exit statuses (hubfs(1), EXIT STATUS)."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from tests.mount.conftest import HUBFS, ROOT
from tests.mount.util import api_calls, count


def meson_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        return re.search(r"^\s*version:\s*'([^']+)'", f.read(), re.M).group(1)


def run(*args, **kw):
    return subprocess.run([HUBFS, *args], capture_output=True, text=True, timeout=120, **kw)


def test_version_is_meson_s_and_needs_no_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HUBSPOT_TOKEN"}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    for flag in ("--version", "-V"):
        r = run(flag, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"hubfs {meson_version()}"
        assert "FUSE library version" in r.stdout


def test_status_json_and_version_field(sandbox, hubfs):
    m = hubfs()
    r = run("status", "--json", m.path)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["portal_id"] == sandbox.portal_id and st["version"] == meson_version()
    assert {"queue", "rate", "types", "api_calls"} <= set(st)
    assert {"landed", "batch"} <= set(st["queue"]) and "waits" in st["rate"]


def test_exit_statuses(tmp_path, sandbox, hubfs):
    m = hubfs()
    assert run("status", m.path).returncode == 0
    # not a hubfs mount: 3
    for cmd in (["status"], ["status", "--json"], ["sync"]):
        r = run(*cmd, str(tmp_path))
        assert r.returncode == 3 and "is not a mounted hubfs" in r.stderr, (cmd, r)
    # usage: 2
    for cmd in ([], ["status"], ["status", "--bogus", m.path], ["status", "--json", "--watch", m.path],
                ["status", "--watch", "--interval", "0", m.path], ["sync"], ["sync", m.path, m.path]):
        r = run(*cmd)
        assert r.returncode == 2, (cmd, r)


def test_sync_exit_1_lists_what_did_not_land(sandbox, hubfs):
    m = hubfs("writeback_delay_ms=200", allow=("rejected by HubSpot", "unmounting with"))
    ids = sorted(f[:-5] for f in os.listdir(m.p("contacts")) if f.endswith(".json"))
    with open(m.p("contacts", f"{ids[1]}.json")) as f:
        other_email = json.load(f)["properties"]["email"]
    # valid here, refused by HubSpot: the email belongs to another contact
    m.run(["sed", "-i", f's/"email": [^,]*/"email": "{other_email}"/', f"contacts/{ids[0]}.json"])
    r = run("sync", m.path)
    assert r.returncode == 1, r
    assert "not landed" in r.stderr and f"contacts/{ids[0]}" in r.stderr, r.stderr


def test_sync_plain_lines_without_a_terminal(sandbox, hubfs):
    m = hubfs("writeback_delay_ms=60000", allow=HELD)
    ids = sorted(f[:-5] for f in os.listdir(m.p("contacts")) if f.endswith(".json"))[:250]
    queue_edits(sandbox, m, ids, "Plain")
    sandbox.configure(latency_ms=300)
    r = run("sync", m.path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "\r" not in r.stdout and "\033" not in r.stdout  # no terminal control
    assert lines[-1].startswith("hubfs sync: every queued change landed"), r.stdout
    progress = [l for l in lines if re.match(r"hubfs sync: \d+/\d+ landed", l)]
    assert progress and progress[-1].startswith("hubfs sync: "), r.stdout
    done = [int(re.match(r"hubfs sync: (\d+)/", l).group(1)) for l in progress]
    assert done == sorted(done), r.stdout
    assert all(sandbox.record("contacts", i)["properties"]["jobtitle"] == f"Plain {i}" for i in ids)


# While a test queues its edits, HubSpot answers batch/read with 503: nothing
# can land before `hubfs sync` starts, however slowly the edits are written
# (valgrind), and the writeback just backs off.
HOLD = r"^/crm/v3/objects/contacts/batch/read$"
HELD = ("writeback", "batch/read", "503", "HubSpot")


def queue_edits(sandbox, m, ids, title):
    sandbox.fault("503", path=HOLD, seconds=600)  # until clear_faults()
    edit_all(m, ids, title)
    deadline = time.time() + 10  # status.json is a snapshot of up to a second
    while (q := m.status()["queue"])["pending"] + q["in_flight"] != len(ids) and time.time() < deadline:
        time.sleep(0.2)
    assert q["pending"] + q["in_flight"] == len(ids) and q["landed"] == 0, q
    sandbox.clear_faults()


def edit_all(m, ids, title):
    for i in ids:
        p = m.p("contacts", f"{i}.json")
        with open(p) as f:
            rec = json.load(f)
        rec["properties"]["jobtitle"] = f"{title} {i}"
        with open(p, "w") as f:
            json.dump(rec, f)


PROGRESS = re.compile(r"hubfs sync: (\d+)/(\d+) landed \((\d+)%\)")


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_sync_progress_line_in_tmux(sandbox, hubfs, tmp_path):
    """1,000 queued edits: on a terminal, `hubfs sync` redraws one line whose
    landed count advances until every edit landed."""
    sandbox.reset(contacts=1000, companies=10, deals=10, tickets=5)
    m = hubfs("writeback_delay_ms=60000", allow=HELD)
    ids = sorted(f[:-5] for f in os.listdir(m.p("contacts")) if f.endswith(".json"))
    assert len(ids) == 1000
    queue_edits(sandbox, m, ids, "Tmux")
    sandbox.configure(latency_ms=400)  # a batch (read + update) takes about a second
    sock = f"hubfs-test-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    out = tmp_path / "exit"
    subprocess.run(tmux + ["new-session", "-d", "-s", "sync", "-x", "150", "-y", "10",
                           f"{HUBFS} sync {m.path}; echo $? > {out}; sleep 600"], check=True)
    screens = []
    try:
        deadline = time.time() + 180
        while not out.exists() or not out.read_text().strip():
            assert time.time() < deadline, "hubfs sync did not finish:\n" + "\n".join(screens[-3:])
            screens.append(subprocess.run(tmux + ["capture-pane", "-p", "-t", "sync"],
                                          capture_output=True, text=True, check=True).stdout)
            time.sleep(0.2)
        screens.append(subprocess.run(tmux + ["capture-pane", "-p", "-t", "sync"],
                                      capture_output=True, text=True, check=True).stdout)
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
    assert out.read_text().strip() == "0", screens[-1]
    seen = []
    for s in screens:
        lines = [l for l in s.splitlines() if l.strip()]
        prog = [l for l in lines if PROGRESS.match(l)]
        # one line, redrawn in place: never two progress lines on the screen
        assert len(prog) <= 1, s
        if prog:
            g = PROGRESS.match(prog[0])
            seen.append((int(g.group(1)), int(g.group(2))))
    print("progress states:", sorted(set(seen)))
    landed = [a for a, _ in seen]
    assert landed == sorted(landed), seen
    assert len(set(landed)) >= 3, f"the line did not advance: {seen}"
    last = screens[-1]
    assert re.search(r"hubfs sync: (\d+)/\1 landed \(100%\)", last), last
    assert "every queued change landed" in last
    assert any("ETA" in s for s in screens) and any("sending update of" in s for s in screens)
    assert seen[-1] == (1000, 1000), seen
    sandbox.configure(latency_ms=0)
    assert all(sandbox.record("contacts", i)["properties"]["jobtitle"] == f"Tmux {i}" for i in ids)
    assert count(sandbox, "POST", r"^/crm/v3/objects/contacts/batch/update$") == 10, api_calls(sandbox)


def test_status_watch_shows_a_cold_listing_s_progress(sandbox, hubfs):
    sandbox.reset(contacts=3000, companies=10, deals=10, tickets=5)
    m = hubfs()
    sandbox.configure(latency_ms=150)  # 30 list pages: a few seconds
    sandbox.clear_log()
    lister = threading.Thread(target=lambda: os.listdir(m.p("contacts")))
    lister.start()
    watch = subprocess.Popen([HUBFS, "status", "--watch", "--interval", "1", m.path],
                             stdout=subprocess.PIPE, text=True)
    progress, summaries = [], 0
    try:
        deadline = time.time() + 60
        for line in watch.stdout:
            summaries += line.startswith("hubfs on ")
            g = re.search(r"contacts\s+listed (\d+) of (\d+) \(listing… (\d+)%\)", line)
            if g:
                progress.append(tuple(int(x) for x in g.groups()))
            if "contacts   listed 3000 (complete)" in line or time.time() > deadline:
                break
    finally:
        watch.kill()
        watch.wait()
        lister.join(timeout=120)
    assert summaries >= 2, "--watch printed the summary once"
    assert progress, "no 'listed N of 3000 (listing… P%)' line"
    assert all(total == 3000 and 0 < n < 3000 and pct == n * 100 // 3000 for n, total, pct in progress)
    # the total comes with the first page of the listing's search side (no
    # count of its own): list pages up, search pages down, fewer calls in all
    searches = count(sandbox, "POST", r"^/crm/v3/objects/contacts/search$")
    lists = count(sandbox, "GET", r"^/crm/v3/objects/contacts$")
    assert searches >= 1 and lists + searches < 30, api_calls(sandbox)
