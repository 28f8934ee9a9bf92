"""Security: hubfs trusts no file another user could have written, and keeps
the token out of every byte that leaves (issue 12).

The other user is played by uid 65534 (nobody): files chowned to it, and
runuser for reads through an allow_other mount. A hostile "HubSpot" stands
between hubfs and the sandbox (tests/mount/hostile.py) to echo secrets, loop
its cursors and send huge answers; a bare TCP listener plays an environment
proxy and a server the token must never reach.
"""
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from tests.mount.hostile import Hostile, Listener
from tests.mount.util import api_calls, count, first_contact

NOBODY = 65534
CONTACTS_LIST = "/crm/v3/objects/contacts"


def needs_root():
    if os.getuid() != 0:
        pytest.skip("plays another user with chown/runuser: needs root")


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def refused(m, timeout=30):
    """The daemon exited non-zero without mounting; its stderr."""
    try:
        rc = m.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        m.kill()
        m.unmounted = True
        pytest.fail("hubfs did not give up (it hangs, or it mounted):\n" + m.stderr())
    m.unmounted = True
    assert rc != 0, "hubfs mounted:\n" + m.stderr()
    return m.stderr()


def poke(m):
    """Make hubfs call HubSpot (a refresh of contacts: one search), so a due
    OAuth refresh happens; failures are expected and ignored."""
    try:
        with open(m.p(".hubfs", "ctl"), "w") as f:
            f.write("refresh contacts\n")
    except OSError:
        pass


def state_dir(tmp_path, sandbox):
    return tmp_path / "state" / "hubfs" / str(sandbox.portal_id)


def write_config(tmp_path, text, mode=0o600):
    d = tmp_path / "config" / "hubfs"
    d.mkdir(parents=True, exist_ok=True)
    p = d / "config"
    p.write_text(text)
    os.chmod(p, mode)
    return p


# --- 1. the state directory --------------------------------------------------------

# The journal's schema (cache/writeback/journal.c), to plant a journal as another user would.
JOURNAL_SQL = """
CREATE TABLE ops (seq INTEGER PRIMARY KEY AUTOINCREMENT,
 kind TEXT NOT NULL, type INTEGER NOT NULL, rec_id INTEGER NOT NULL DEFAULT 0, key TEXT,
 props TEXT, base TEXT, to_type INTEGER NOT NULL DEFAULT -1, to_id INTEGER NOT NULL DEFAULT 0,
 state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
 created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0,
 epoch INTEGER NOT NULL DEFAULT 0);
CREATE INDEX ops_rec ON ops(type, rec_id, kind, state);
CREATE INDEX ops_state ON ops(state, type);
PRAGMA user_version = 1;
"""


def plant_journal(d, archive_id):
    """A journal that archives a contact, as another user could leave it."""
    d.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(d / "journal.db")
    db.executescript(JOURNAL_SQL)
    now = int(time.time() * 1000)
    db.execute("INSERT INTO ops (kind, type, rec_id, created_ms, updated_ms) "
               "VALUES ('archive', 0, ?, ?, ?)", (int(archive_id), now, now))
    db.commit()
    db.close()


def chown_tree(top, uid):
    for root, dirs, files in os.walk(top):
        os.chown(root, uid, uid)
        for f in files:
            os.chown(os.path.join(root, f), uid, uid)


def test_state_dir_of_another_user_is_refused(sandbox, hubfs, tmp_path):
    """Another user made the state directory (world-writable, as under /tmp)
    and left a journal archiving a contact: hubfs refuses to mount, and the
    contact stays (without -o allow_delete, too)."""
    needs_root()
    rid = sorted(sandbox.api("GET", CONTACTS_LIST).json()["results"], key=lambda r: r["id"])[0]["id"]
    d = state_dir(tmp_path, sandbox)
    plant_journal(d, rid)
    os.chmod(d, 0o777)
    chown_tree(d, NOBODY)
    m = hubfs(wait=False)
    err = refused(m)
    assert str(d) in err and "owned by uid 65534" in err and "refusing to mount" in err, err
    time.sleep(1)
    assert count(sandbox, "POST", r"/batch/archive") == 0, api_calls(sandbox)
    assert not sandbox.record("contacts", rid)["archived"]


def test_file_in_state_dir_of_another_user_is_refused(sandbox, hubfs, tmp_path):
    """The directory is ours, but a journal in it is not."""
    needs_root()
    rid = sorted(sandbox.api("GET", CONTACTS_LIST).json()["results"], key=lambda r: r["id"])[0]["id"]
    d = state_dir(tmp_path, sandbox)
    plant_journal(d, rid)
    os.chmod(d, 0o700)
    os.chmod(d / "journal.db", 0o644)
    os.chown(d / "journal.db", NOBODY, NOBODY)
    err = refused(hubfs(wait=False))
    assert str(d / "journal.db") in err and "owned by uid 65534" in err, err
    assert count(sandbox, "POST", r"/batch/archive") == 0, api_calls(sandbox)


def test_symlinked_errors_log_is_refused(sandbox, hubfs, tmp_path):
    """errors.log as a symlink to a file elsewhere: not followed, not mounted."""
    d = state_dir(tmp_path, sandbox)
    d.mkdir(parents=True)
    os.chmod(d, 0o700)
    target = tmp_path / "victim"
    target.write_text("precious\n")
    os.symlink(target, d / "errors.log")
    err = refused(hubfs(wait=False))
    assert "errors.log" in err and "symlink" in err, err
    assert target.read_text() == "precious\n"


def test_group_writable_state_dir_is_refused(sandbox, hubfs, tmp_path):
    d = state_dir(tmp_path, sandbox)
    d.mkdir(parents=True)
    os.chmod(d, 0o770)
    err = refused(hubfs(wait=False))
    assert str(d) in err and "writable by its group" in err, err


def test_no_tmp_fallback_without_home(sandbox, hubfs):
    """With neither XDG_STATE_HOME nor HOME, hubfs used /tmp/.local/state,
    where any user can plant a journal; now it refuses to guess."""
    m = hubfs(wait=False, unset=("XDG_STATE_HOME", "HOME"))
    err = refused(m)
    assert "XDG_STATE_HOME" in err and "HOME" in err and "refusing to mount" in err, err


# --- 2. the config file ---------------------------------------------------------------


def test_config_writable_by_others_is_refused(sandbox, hubfs, tmp_path):
    """A config anyone could have edited points api_url at their listener: no
    secret in it, but it decides where the token goes. Refused, and the
    listener hears nothing."""
    spy = Listener()
    try:
        for mode in (0o666, 0o620):
            write_config(tmp_path, f"[hubfs]\napi_url = {spy.url}\n", mode)
            # -o api_url= would win over the config: leave it out
            m = hubfs(wait=False, api_url=False)
            err = refused(m)
            assert "config" in err and "chmod go-w" in err and oct(mode)[2:] in err, err
        assert spy.connections() == 0
    finally:
        spy.stop()


def test_config_owned_by_another_user_is_refused(sandbox, hubfs, tmp_path):
    needs_root()
    spy = Listener()
    try:
        p = write_config(tmp_path, f"[hubfs]\napi_url = {spy.url}\n", 0o644)
        os.chown(p, NOBODY, NOBODY)
        err = refused(hubfs(wait=False, api_url=False))
        assert "owned by uid 65534" in err, err
        assert spy.connections() == 0
    finally:
        spy.stop()


def test_config_value_cannot_add_a_mount_option(sandbox, hubfs, tmp_path):
    """`ttl = 60,allow_other` used to become -ottl=60,allow_other."""
    for line in ("ttl = 60,allow_other", "ttl = 60\\,allow_other", "ca_file = /x,allow_other"):
        write_config(tmp_path, f"[hubfs]\n{line}\n")
        err = refused(hubfs(wait=False))
        key = line.split()[0]
        assert f"[hubfs] {key}: the value holds a" in err, err
    assert not any(" allow_other" in l or ",allow_other" in l for l in open("/proc/mounts"))


def test_config_unknown_key_or_group_is_refused(sandbox, hubfs, tmp_path):
    for text, want in (("[hubfs]\nallow_other = true\n", "allow_other: unknown key"),
                       ("[hubfs]\nttl = 5\nttl = 6\n", "ttl: given twice"),
                       ("[fuse]\ndebug = 1\n", "[fuse]: unknown group"),
                       ("[hubfs]\ntoken = pat-na1-x\n", "belongs in a file named by token_file")):
        write_config(tmp_path, text)
        err = refused(hubfs(wait=False))
        assert want in err, (text, err)


def test_config_values_apply(sandbox, hubfs, tmp_path):
    """Known keys still work, -o still wins, and a props list keeps its commas."""
    write_config(tmp_path, "[hubfs]\nttl = 41\nread_only_is_not_a_key_but = ro\n")
    refused(hubfs(wait=False))
    write_config(tmp_path, "[hubfs]\nttl = 41\nro = true\nprops_contacts = email,firstname\n"
                 "umask = 027\n", 0o644)
    m = hubfs("ttl=42")
    st = m.status()
    assert st["ttl_s"] == 42 and st["read_only"] is True and st["umask"] == "027"
    rec = json.load(open(m.p("contacts", first_contact(m) + ".json")))
    assert set(rec["properties"]) >= {"email", "firstname"} and "phone" not in rec["properties"]
    assert stat.S_IMODE(os.stat(m.p("contacts")).st_mode) == 0o550  # 0555 less 027
    line = next(l for l in open("/proc/mounts") if f" {m.path} " in l)
    assert line.split()[3].split(",")[0] == "ro", line


# --- 3. token_file -----------------------------------------------------------------------


def test_token_file_fifo_is_refused_at_once(sandbox, hubfs, tmp_path):
    """A FIFO used to block the mount forever (open waits for a writer) and
    then be read by a second open of the path."""
    f = tmp_path / "token.fifo"
    os.mkfifo(f, 0o600)
    err = refused(hubfs(f"token_file={f}", token="", wait=False), timeout=15)
    assert "not a regular file" in err, err


def test_token_file_owned_by_another_user_is_refused(sandbox, hubfs, tmp_path):
    needs_root()
    f = tmp_path / "token"
    f.write_text(sandbox.token + "\n")
    os.chmod(f, 0o600)
    os.chown(f, NOBODY, NOBODY)
    err = refused(hubfs(f"token_file={f}", token="", wait=False))
    assert "owned by uid 65534" in err, err
    os.chown(f, 0, 0)
    m = hubfs(f"token_file={f}", token="")
    assert first_contact(m)


# --- 4. proxies -----------------------------------------------------------------------------


PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def test_plain_http_never_goes_through_a_proxy(sandbox, hubfs):
    """http:// to loopback with http_proxy set: the proxy would read the bearer
    token in clear. hubfs talks to the sandbox directly."""
    spy = Listener()
    try:
        m = hubfs(env={k: spy.url for k in PROXY_VARS}, unset=("no_proxy", "NO_PROXY"))
        assert first_contact(m)
        assert os.listdir(m.p("companies"))
        assert spy.connections() == 0 and spy.data() == b""
    finally:
        spy.stop()


def test_https_through_an_env_proxy_shows_only_connect(sandbox, hubfs):
    """https:// honours https_proxy: the proxy sees a CONNECT line, and the
    token is inside TLS it never gets to."""
    spy = Listener()
    try:
        m = hubfs("api_url=https://127.0.0.1:9/", "op_timeout=3", env={"https_proxy": spy.url,
                                                       "HTTPS_PROXY": spy.url},
                  unset=("no_proxy", "NO_PROXY"), wait=False)
        refused(m)
        data = spy.data()
        assert data.startswith(b"CONNECT 127.0.0.1:9 "), data
        assert sandbox.token.encode() not in data and b"Authorization" not in data
    finally:
        spy.stop()


# --- 5. secrets echoed by the server ---------------------------------------------------

TOKEN = "pat-na1-S3cr3t/ab+cd=ef9-0123456789"


def forms(secret):
    """The forms of a secret that must never show: raw, percent-encoded in
    both cases, and a distinctive piece of it."""
    up = urllib.parse.quote(secret, safe="-._~")
    return [secret, up, re.sub(r"%[0-9A-F]{2}", lambda x: x.group(0).lower(), up),
            secret[8:20]]


def echo(secret):
    """An error body echoing a secret every way a server could."""
    enc = urllib.parse.quote(secret, safe="-._~")
    return {"status": "error", "category": secret[:60],
            "message": f"bad \x1b[31mtoken {secret} ({enc.lower()})\r\nhubfs: error: forged "
                       + "x" * 400 + " " + secret,
            "correlationId": secret}


def assert_clean(m, secrets, where_more=()):
    places = {"stderr": m.stderr().encode()}
    if m.alive():
        places["status.json"] = open(m.p(".hubfs", "status.json"), "rb").read()
        places[".hubfs/errors.log"] = open(m.p(".hubfs", "errors.log"), "rb").read()
    for p in where_more:
        if os.path.exists(p):
            places[str(p)] = open(p, "rb").read()
    for where, data in places.items():
        for s in secrets:
            for f in forms(s):
                assert f.encode() not in data, f"{f!r} is in {where}"
    err = places["stderr"]
    assert b"\x1b" not in err and b"\r" not in err, "control characters in stderr"
    assert not re.search(rb"^hubfs: error: forged", err, re.M), "a forged log line"
    return places


def test_echoed_token_is_scrubbed(sandbox, hubfs, tmp_path):
    def override(req):
        if req.route == CONTACTS_LIST:
            return 400, echo(TOKEN)
        if req.route.endswith("/companies/search"):
            return 400, f"upstream refused Bearer {TOKEN}\x1b]0;owned\x07", "text/plain"
        if req.route == "/crm/v3/objects/deals/batch/update":
            # a 207 whose error for the deal quotes the token
            rid = req.json()["inputs"][0]["id"]
            return 207, {"status": "COMPLETE", "results": [],
                         "errors": [dict(echo(TOKEN), context={"ids": [rid],
                                                               "propertyName": ["dealname"]})]}
        return None

    hostile = Hostile(sandbox.url, override, auth=sandbox.token)
    try:
        m = hubfs(f"api_url={hostile.url}", "writeback_delay_ms=200", token=TOKEN,
                  allow=(r"listing contacts", r"writeback", r"rejected", r"search"))
        with pytest.raises(OSError):
            os.listdir(m.p("contacts"))  # HubSpot's 400: EINVAL
        with pytest.raises(OSError):
            os.listdir(m.p("search", "companies", "name~acme"))
        deal = sorted(f for f in os.listdir(m.p("deals")) if f.endswith(".json"))[0]
        subprocess.run(["sed", "-i", 's/"dealname": "[^"]*"/"dealname": "Echo"/',
                        m.p("deals", deal)], check=True)
        wait_for(lambda: "dealname" in open(m.p(".hubfs", "errors.log")).read(), 20,
                 "the refused update in errors.log")
        st = m.status()
        assert "HTTP 400" in (st["last_error"] or ""), st["last_error"]
        places = assert_clean(m, [TOKEN], [state_dir(tmp_path, sandbox) / "errors.log",
                                           state_dir(tmp_path, sandbox) / "journal.db"])
        assert b"forged" in places["status.json"] or b"forged" in places["stderr"]
        assert b"****" in places[".hubfs/errors.log"]
        m.unmount()
        assert_clean(m, [TOKEN])
    finally:
        hostile.stop()


OAUTH = dict(client_id="hubfs-sec-client", client_secret="cs+Sec/ret=0123456789abcdef",
             refresh_token="rt-Refre/sh+tok=0123456789")


def test_echoed_oauth_secrets_are_scrubbed(sandbox, hubfs, tmp_path):
    """A token endpoint that refuses a refresh echoing the client secret and
    the refresh token (raw, encoded, in every field): auth.error, status and
    stderr show none of them."""
    sandbox.configure(token_expiry=3, **OAUTH)
    grants = []

    def override(req):
        if req.route == "/oauth/v1/token":
            if not grants:
                grants.append(1)
                return None
            form = urllib.parse.parse_qs(req.body.decode())
            body = echo(OAUTH["client_secret"])
            body["message"] += " rt=" + form["refresh_token"][0] + " " + \
                urllib.parse.quote(OAUTH["refresh_token"], safe="")
            body["status"] = OAUTH["refresh_token"]
            return 400, body
        return None

    hostile = Hostile(sandbox.url, override)
    try:
        write_config(tmp_path, "[oauth]\n" + "".join(f"{k} = {v}\n" for k, v in OAUTH.items()))
        m = hubfs(f"api_url={hostile.url}", token="",
                  allow=("OAuth", "no valid OAuth", "listing", "refresh of"))
        first_contact(m)
        wait_for(lambda: poke(m) or m.status()["auth"]["state"] == "refresh_failed", 20,
                 "the failed refresh")
        st = m.status()["auth"]
        assert "HTTP 400" in st["error"] and "****" in st["error"], st
        assert_clean(m, [OAUTH["client_secret"], OAUTH["refresh_token"]])
    finally:
        hostile.stop()


# --- 6. process hardening ---------------------------------------------------------------


def token_copies(pid, token):
    """How many times token is in the readable memory of process pid."""
    n = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perm = line.split()[:2]
            if "r" not in perm:
                continue
            lo, hi = (int(x, 16) for x in span.split("-"))
            if hi - lo > 1 << 30:
                continue  # a sanitizer's shadow memory, mostly unmapped
            tail = b""
            for at in range(lo, hi, 1 << 24):
                try:
                    mem.seek(at)
                    chunk = tail + mem.read(min(1 << 24, hi - at))
                except (OSError, ValueError, OverflowError):
                    break
                n += chunk.count(token)
                tail = chunk[-(len(token) - 1):]
    return n


def test_token_not_in_environ_and_no_core(sandbox, hubfs):
    """HUBSPOT_TOKEN is overwritten in the environment block the kernel shows
    (unsetenv alone leaves it there), no core file can hold it, and after a
    few hundred requests the daemon's memory holds it once: the client's
    copy (the per-request copies, and libcurl's request buffers, are wiped)."""
    needs_root()  # reads /proc/PID/mem
    if os.environ.get("HUBFS_VALGRIND"):
        pytest.skip("/proc/PID of valgrind shows valgrind's environment and memory")
    token = "pat-na1-OneCopyOnly-5d41402abc4b2a76b9719d911017c592"
    hostile = Hostile(sandbox.url, auth=sandbox.token)
    try:
        m = hubfs(f"api_url={hostile.url}", token=token)
        for t in ("contacts", "companies", "deals", "tickets"):
            os.listdir(m.p(t))
        with open(f"/proc/{m.pid}/environ", "rb") as f:
            env = f.read()
        assert b"HUBSPOT_TOKEN=" in env  # the name stays, the value is gone
        assert token.encode() not in env
        with open(f"/proc/{m.pid}/limits") as f:
            core = next(l for l in f if l.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
        time.sleep(0.5)
        assert hostile.count(lambda r: True) > 10
        # AddressSanitizer keeps instrumented stack frames off the stack,
        # where a later call does not overwrite them
        assert token_copies(m.pid, token.encode()) <= (2 if sanitized(m.pid) else 1)
    finally:
        hostile.stop()


# --- 7. a hostile or broken server ------------------------------------------------------


def ls_fails(path, timeout=60):
    """`ls path` in a child, which must fail within timeout (a hubfs that
    pages forever would hang the test process itself). Its stderr."""
    try:
        r = subprocess.run(["ls", path], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ls {path} still running after {timeout} s")
    assert r.returncode != 0, f"ls {path} succeeded"
    return r.stderr


def list_requests(h):
    return h.count(lambda r: r.route == CONTACTS_LIST)


def test_repeated_cursor_stops_the_listing(sandbox, hubfs):
    def override(req):
        if req.route == CONTACTS_LIST:
            st, page = hostile.forward_json(req, drop_after=True)
            page["paging"] = {"next": {"after": "same-cursor"}}
            return st, page
        return None

    hostile = Hostile(sandbox.url, override)
    try:
        m = hubfs(f"api_url={hostile.url}", "op_timeout=8", "rate_limit=1000/10s",
                  allow=("listing contacts",))
        assert "Input/output error" in ls_fails(m.p("contacts"), 30)
        assert list_requests(hostile) == 2, list_requests(hostile)
        assert "paging cursor it had handed out before" in m.stderr()
    finally:
        hostile.stop()


def test_endless_pages_stop_at_what_the_total_fills(sandbox, hubfs):
    """New records and new cursors on every page, forever: after 50 pages the
    listing counts the records (one search; the sandbox has 1,000), and stops."""
    n = [0]

    def override(req):
        if req.route == CONTACTS_LIST:
            st, page = hostile.forward_json(req, drop_after=True)
            n[0] += 1
            for i, r in enumerate(page["results"]):
                r["id"] = str(10_000_000 + n[0] * 1000 + i)
            page["paging"] = {"next": {"after": f"c{n[0]}"}}
            return st, page
        return None

    hostile = Hostile(sandbox.url, override)
    try:
        m = hubfs(f"api_url={hostile.url}", "op_timeout=60", "rate_limit=1000/10s",
                  allow=("listing contacts",))
        assert "Input/output error" in ls_fails(m.p("contacts"), 90)
        assert list_requests(hostile) == 50, list_requests(hostile)
        assert hostile.count(lambda r: r.route.endswith("/contacts/search")) == 1
        assert "more pages than the records HubSpot counts would fill" in m.stderr()
    finally:
        hostile.stop()


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM")).split()[1])


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read() or bool(os.environ.get("HUBFS_VALGRIND"))


def test_huge_answers_are_refused_before_they_cost_memory(sandbox, hubfs):
    """12 MiB of [0,0,…] (six million JSON values: json-c would take some
    430 MB for them) and a 17 MiB page (past the 16 MiB cap of a list page)."""
    dense = b'{"results":[' + b"0," * (6 * 1024 * 1024) + b'0]}'
    padded = b'{"results":[],"pad":"' + b"a" * (17 * 1024 * 1024) + b'"}'
    answer = {"contacts": dense, "companies": padded}

    def override(req):
        for t, body in answer.items():
            if req.route == f"/crm/v3/objects/{t}":
                return 200, body
        return None

    hostile = Hostile(sandbox.url, override)
    try:
        m = hubfs(f"api_url={hostile.url}", allow=("listing contacts", "listing companies"))
        base = peak_rss_kb(m.pid)
        for t in answer:
            assert "Input/output error" in ls_fails(m.p(t)), t
        err = m.stderr()
        assert "more than 1000000 JSON values" in err and "larger than 16777216 bytes" in err, err
        grown = peak_rss_kb(m.pid) - base
        print(f"\npeak RSS grew by {grown // 1024} MiB")
        if not sanitized(m.pid):
            assert grown < 120 * 1024, f"peak RSS grew by {grown // 1024} MiB"
    finally:
        hostile.stop()


def test_relist_runs_under_one_deadline(sandbox, hubfs):
    """A relist used to give each page 120 s: a server answering slowly and
    never ending kept it (and the quota) going forever. Now the whole relist
    gets relist_interval (here 3 s, as the first listing was fast)."""
    phase = {"hostile": False, "n": 0}

    def override(req):
        if req.route == CONTACTS_LIST and phase["hostile"]:
            st, page = hostile.forward_json(req, drop_after=True)
            phase["n"] += 1
            time.sleep(1)
            page["paging"] = {"next": {"after": f"slow{phase['n']}"}}
            return st, page
        return None

    hostile = Hostile(sandbox.url, override)
    try:
        m = hubfs(f"api_url={hostile.url}", "relist_interval=3", "rate_limit=1000/10s",
                  allow=("relist", "listing contacts"))
        os.listdir(m.p("contacts"))
        phase["hostile"] = True
        t0 = time.time()
        while time.time() - t0 < 14:
            os.listdir(m.p("contacts"))  # served from the old listing; kicks the relist
            time.sleep(0.5)
        n = phase["n"]
        assert 2 <= n <= 5, f"{n} pages of relist in 14 s"
        assert "relist of contacts: not done within 3 s" in m.stderr(), m.stderr()
    finally:
        hostile.stop()


# --- 8. allow_other and modes -----------------------------------------------------------


@pytest.fixture
def open_mnt():
    """A mountpoint other users can reach (tmp_path is under a 0700 directory)."""
    d = tempfile.mkdtemp(prefix="hubfs-sec-")
    os.chmod(d, 0o755)
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    yield mnt
    try:
        os.rmdir(mnt)
        os.rmdir(d)
    except OSError:
        pass


def as_nobody(*cmd):
    return subprocess.run(["runuser", "-u", "nobody", "--"] + list(cmd),
                          capture_output=True, text=True, timeout=60)


def test_allow_other_warns_and_modes_keep_others_out(sandbox, hubfs, open_mnt):
    needs_root()
    m = hubfs("allow_other", mnt=open_mnt, allow=("allow_other",))
    rid = first_contact(m)
    assert "warning: allow_other: every local user can reach this mount" in m.stderr()
    assert stat.S_IMODE(os.stat(m.path).st_mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(m.p("contacts")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(m.p("contacts", rid + ".json")).st_mode) == 0o600
    r = as_nobody("cat", m.p("contacts", rid + ".json"))
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    r = as_nobody("ls", m.p("contacts"))
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    assert m.status()["allow_other"] is True


def test_umask_widens_for_other_users(sandbox, hubfs, open_mnt):
    needs_root()
    m = hubfs("allow_other", "umask=022", mnt=open_mnt, allow=("allow_other",))
    rid = first_contact(m)
    assert "they read the CRM as you" in m.stderr()
    assert stat.S_IMODE(os.stat(m.p("contacts", rid + ".json")).st_mode) == 0o644
    r = as_nobody("cat", m.p("contacts", rid + ".json"))
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == rid, r
    r = as_nobody("sh", "-c", f"echo x >> {m.p('contacts', rid + '.json')}")
    assert r.returncode != 0, r


# --- 9. OAuth: the token must be for the mounted portal ---------------------------------


def test_oauth_token_for_another_portal_stops_sending(sandbox, hubfs, tmp_path):
    """The credentials start giving tokens of another portal: the refresh gets
    one, hubfs refuses it, sends nothing more (the edit stays queued) and says
    so in status.json, errors.log and stderr. Good credentials and SIGHUP
    resume."""
    sandbox.configure(token_expiry=3, **OAUTH)
    write_config(tmp_path, "[oauth]\n" + "".join(f"{k} = {v}\n" for k, v in OAUTH.items()))
    m = hubfs("writeback_delay_ms=300", token="",
              allow=("OAuth", "portal", "no valid OAuth", "writeback", "operations not sent",
                     "refresh of", "listing", "batch read", "SIGHUP", "re-read"))
    rid = first_contact(m)
    mounted = sandbox.portal_id
    sandbox.configure(portal_id=mounted + 1)
    wait_for(lambda: poke(m) or m.status()["auth"]["state"] == "portal_mismatch", 20,
             "the refused token")
    seq = sandbox.last_seq()
    subprocess.run(["sed", "-i", 's/"firstname": "[^"]*"/"firstname": "Elsewhere"/',
                    m.p("contacts", f"{rid}.json")], check=True)
    time.sleep(3)
    st = m.status()
    assert f"portal {mounted + 1}, not the mounted portal {mounted}" in st["auth"]["error"], st
    assert st["queue"]["pending"] >= 1 and st["queue"]["failed"] == 0, st["queue"]
    log = open(m.p(".hubfs", "errors.log")).read()
    assert re.search(r'"op":"auth".*not the mounted portal', log), log
    assert "not the mounted portal" in m.stderr()
    after = [e for e in sandbox.log(since=seq) if e["path"] != "/oauth/v1/token"]
    assert after == [], api_calls(sandbox)
    assert sandbox.record("contacts", rid)["properties"].get("firstname") != "Elsewhere"

    sandbox.configure(portal_id=mounted)
    m.signal(signal.SIGHUP)
    wait_for(lambda: sandbox.record("contacts", rid)["properties"].get("firstname") == "Elsewhere",
             30, "the queued edit to land")
    wait_for(lambda: m.status()["auth"]["state"] == "ok", 5, "status to say ok")
