"""OAuth: a mount whose only credentials are an OAuth app's client id, client
secret and refresh token in $XDG_CONFIG_HOME/hubfs/config (mode 0600), against
the sandbox's POST /oauth/v1/token. Token calls and 401s are counted from the
sandbox's request log."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls

TOKEN_PATH = "/oauth/v1/token"
CLIENT_ID = "hubfs-test-client"
SECRET = "cs-9d81f3a2-not-for-logs"
RT = "rt-4b6e0c15-not-for-logs"

# Lines a broken refresh token makes the daemon print (stderr is otherwise
# held to no error/warning line by the fixture).
AUTH_TROUBLE = ("OAuth: token refresh failed", r"writeback: .* failed .*no valid OAuth",
                "operations not sent", r"refresh of \w+: no valid OAuth",
                r"batch read of .*no valid OAuth")


@pytest.fixture
def oauth_sandbox(sandbox):
    """The sandbox with this test's OAuth app credentials."""
    sandbox.configure(client_id=CLIENT_ID, client_secret=SECRET, refresh_token=RT)
    return sandbox


def write_config(tmp_path, refresh_token=RT, mode=0o600, section="oauth", extra=""):
    d = tmp_path / "config" / "hubfs"
    d.mkdir(parents=True, exist_ok=True)
    p = d / "config"
    p.write_text(f"[{section}]\nclient_id = {CLIENT_ID}\nclient_secret = {SECRET}\n"
                 f"refresh_token = {refresh_token}\n{extra}")
    os.chmod(p, mode)
    return p


def token_calls(sandbox, since=None):
    return [e for e in (sandbox.log(since=since) if since is not None else sandbox.log())
            if e["path"] == TOKEN_PATH]


def expired_401s(sandbox, since=None):
    return [e for e in (sandbox.log(since=since) if since is not None else sandbox.log())
            if e["status"] == 401]


def contacts(m):
    return sorted(f for f in os.listdir(m.p("contacts")) if f.endswith(".json"))


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def issued_tokens(sandbox):
    return [t["access_token"] for t in sandbox._ctl("GET", "tokens")["tokens"]]


def assert_no_secrets(m, tmp_path, sandbox, extra=()):
    """No access token, client secret or refresh token in the daemon's argv,
    its stderr, status.json, errors.log or any file of the state dir."""
    secrets = [SECRET, RT] + list(extra) + issued_tokens(sandbox)
    assert len(secrets) > 2
    places = {}
    if m.alive():
        with open(f"/proc/{m.pid}/cmdline", "rb") as f:
            places["cmdline"] = f.read()
        with open(m.p(".hubfs", "status.json"), "rb") as f:
            places["status.json"] = f.read()
        with open(m.p(".hubfs", "errors.log"), "rb") as f:
            places[".hubfs/errors.log"] = f.read()
        with open(m.p(".hubfs", "queue"), "rb") as f:
            places[".hubfs/queue"] = f.read()
    with open(m.errfile, "rb") as f:
        places["stderr"] = f.read()
    for root, _, files in os.walk(tmp_path / "state"):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                places[os.path.join(root, name)] = f.read()
    assert any("journal" in k or k.endswith(".db") or "sqlite" in k or "state" in k
               for k in places), places.keys()
    for where, data in places.items():
        for s in secrets:
            assert s.encode() not in data, f"a secret ({s[:6]}…) is in {where}"


# --- mounting ------------------------------------------------------------------------


def test_reads_across_token_expiries(oauth_sandbox, hubfs, tmp_path):
    """Short-lived tokens (3 s): reads keep working for several lifetimes, the
    token is refreshed before it expires (no 401), about once per lifetime."""
    sb = oauth_sandbox
    sb.configure(token_expiry=3)
    write_config(tmp_path)
    m = hubfs("ttl=1", token="")
    assert m.status()["auth"]["mode"] == "oauth"
    names = contacts(m)
    t0 = time.time()
    i = 0
    while time.time() - t0 < 13:
        with open(m.p("contacts", names[i % len(names)])) as f:
            assert json.load(f)["id"]
        if i % 5 == 0:
            assert len(contacts(m)) == len(names)
            os.listdir(m.p("companies"))
        i += 1
        time.sleep(0.1)
    elapsed = time.time() - t0
    st = m.status()["auth"]
    calls = token_calls(sb)
    api = [e for e in sb.log() if e["path"] != TOKEN_PATH]
    lifetimes = elapsed / 3
    # One exchange at mount, then one refresh per 80% of a lifetime at most.
    assert len(calls) <= 1 + elapsed / (0.8 * 3) + 1, api_calls(sb)
    assert len(calls) >= lifetimes - 1, api_calls(sb)
    assert all(e["status"] == 200 for e in calls)
    assert not expired_401s(sb), api_calls(sb)          # refreshed before expiry
    assert len(api) > 2 * lifetimes                      # the mount kept calling
    assert all(e["auth"] == "oauth" for e in api)
    assert st["state"] == "ok" and st["error"] is None
    assert st["token_calls"] == len(calls)
    print(f"\n{len(calls)} token calls in {elapsed:.1f} s of 3 s tokens "
          f"({len(calls) / lifetimes:.2f} per lifetime), {len(api)} API calls, 0 401s")
    assert_no_secrets(m, tmp_path, sb)


def test_expired_token_is_refreshed_once_on_401(oauth_sandbox, hubfs, tmp_path):
    sb = oauth_sandbox
    write_config(tmp_path)
    m = hubfs(token="")
    contacts(m)
    seq = sb.last_seq()
    assert sb.expire_tokens() >= 1
    # Cold reads need the API: the first call gets 401 EXPIRED_AUTHENTICATION,
    # hubfs refreshes once and sends it again.
    assert os.listdir(m.p("companies"))
    with open(m.p("deals", sorted(os.listdir(m.p("deals")))[0])) as f:
        assert json.load(f)["id"]
    after = sb.log(since=seq)
    assert len(token_calls(sb, since=seq)) == 1, api_calls(sb)
    assert len(expired_401s(sb, since=seq)) == 1, api_calls(sb)
    assert [e for e in after if e["status"] == 401][0]["seq"] < token_calls(sb, since=seq)[0]["seq"]
    assert m.status()["auth"]["state"] == "ok"


def test_config_not_0600_is_refused(oauth_sandbox, hubfs, tmp_path):
    for mode in (0o644, 0o640, 0o604):
        write_config(tmp_path, mode=mode)
        m = hubfs(token="", wait=False)
        assert m.proc.wait(timeout=30) != 0
        m.unmounted = True
        err = m.stderr()
        assert "0600" in err and "config" in err, err
        assert oct(mode)[2:] in err, err
        assert SECRET not in err and RT not in err
    assert not token_calls(oauth_sandbox)


def test_config_owned_by_someone_else_is_refused(oauth_sandbox, hubfs, tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to chown")
    p = write_config(tmp_path)
    os.chown(p, 65534, 65534)
    m = hubfs(token="", wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True
    assert "owned by" in m.stderr() and "0600" in m.stderr(), m.stderr()


def test_bad_refresh_token_at_mount_is_refused(oauth_sandbox, hubfs, tmp_path):
    write_config(tmp_path, refresh_token="rt-nobody-knows")
    m = hubfs(token="", wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True
    err = m.stderr()
    assert "BAD_REFRESH_TOKEN" in err and "refresh_token" in err, err
    assert "rt-nobody-knows" not in err and SECRET not in err


def test_oauth_section_may_be_hubfs(oauth_sandbox, hubfs, tmp_path):
    """The credentials may also sit in [hubfs], with the other options."""
    write_config(tmp_path, section="hubfs", extra="ttl = 30\n")
    m = hubfs(token="")
    assert m.status()["auth"]["mode"] == "oauth"
    assert m.status()["ttl_s"] == 30
    assert contacts(m)


def test_private_app_token_wins(oauth_sandbox, hubfs, tmp_path):
    write_config(tmp_path)
    m = hubfs()  # HUBSPOT_TOKEN is set too
    assert contacts(m)
    assert m.status()["auth"] == {"mode": "private_app", "state": "ok"}
    assert not token_calls(oauth_sandbox)
    assert "private-app token (HUBSPOT_TOKEN) is set" in m.stderr()


# --- a revoked refresh token ------------------------------------------------------


def revoke_and_edit(sb, m):
    """Revoke the refresh token (the sandbox now wants another one), expire
    the access token, and make an edit: the writeback cannot get a token."""
    names = contacts(m)
    rid = names[0][:-5]
    cached = {}
    for n in names[:20]:
        with open(m.p("contacts", n)) as f:
            cached[n] = f.read()
    sb.configure(refresh_token="rt-rotated-2b7c")
    sb.expire_tokens()
    subprocess.run(["sed", "-i", 's/"firstname": "[^"]*"/"firstname": "Oauthia"/',
                    m.p("contacts", f"{rid}.json")], check=True)
    return rid, cached


def test_revoked_refresh_token_keeps_cache_and_queue(oauth_sandbox, hubfs, tmp_path):
    sb = oauth_sandbox
    write_config(tmp_path)
    m = hubfs("writeback_delay_ms=300", "drain_timeout=2", token="", allow=AUTH_TROUBLE)
    rid, cached = revoke_and_edit(sb, m)

    st = wait_for(lambda: (lambda s: s if s["auth"]["state"] == "refresh_failed" else None)(
        m.status()), 20, "status to report the refresh failure")
    assert "BAD_REFRESH_TOKEN" in st["auth"]["error"], st["auth"]
    assert st["queue"]["pending"] >= 1 and st["queue"]["failed"] == 0, st["queue"]
    # Cached reads still work (and the edit reads back at once).
    for n, text in cached.items():
        with open(m.p("contacts", n)) as f:
            got = f.read()
        if n == f"{rid}.json":
            assert '"Oauthia"' in got
        else:
            assert got == text
    time.sleep(3)  # a few writeback retries: still pending, never failed
    with open(m.p(".hubfs", "queue")) as f:
        q = f.read()
    assert re.search(rf"pending contacts/{rid} .*Oauthia", q), q
    st = m.status()
    assert st["queue"]["failed"] == 0 and st["queue"]["pending"] >= 1
    assert sb.record("contacts", rid)["properties"].get("firstname") != "Oauthia"
    out = subprocess.run([HUBFS, "status", m.path], capture_output=True, text=True, check=True)
    assert "REFRESH FAILED" in out.stdout and "BAD_REFRESH_TOKEN" in out.stdout, out.stdout
    assert_no_secrets(m, tmp_path, sb, extra=["rt-rotated-2b7c"])
    m.unmount()
    assert "operations not sent" in m.stderr()

    # A good config, a remount: the journal is replayed and the edit lands.
    write_config(tmp_path, refresh_token="rt-rotated-2b7c")
    m2 = hubfs("writeback_delay_ms=300", token="", allow=("journal holds operations",))
    wait_for(lambda: sb.record("contacts", rid)["properties"].get("firstname") == "Oauthia",
             20, "the queued edit to land after the remount")
    wait_for(lambda: m2.status()["queue"]["pending"] == 0, 10, "an empty queue")
    wait_for(lambda: m2.status()["auth"]["state"] == "ok", 5, "status to say ok")
    assert_no_secrets(m2, tmp_path, sb, extra=["rt-rotated-2b7c"])


def test_sighup_rereads_credentials(oauth_sandbox, hubfs, tmp_path):
    """Fixing the config and sending SIGHUP is enough: no remount needed."""
    sb = oauth_sandbox
    write_config(tmp_path)
    m = hubfs("writeback_delay_ms=300", token="",
              allow=AUTH_TROUBLE + ("SIGHUP", "re-read", "refreshed again"))
    rid, _ = revoke_and_edit(sb, m)
    wait_for(lambda: m.status()["auth"]["state"] == "refresh_failed", 20, "the refresh failure")
    write_config(tmp_path, refresh_token="rt-rotated-2b7c")
    m.signal(signal.SIGHUP)
    wait_for(lambda: sb.record("contacts", rid)["properties"].get("firstname") == "Oauthia",
             30, "the queued edit to land after SIGHUP")
    assert os.path.ismount(m.path)
    # status.json is a snapshot that may be a second old
    wait_for(lambda: m.status()["auth"]["state"] == "ok", 5, "status to say ok")
    assert "OAuth credentials re-read" in m.stderr()
