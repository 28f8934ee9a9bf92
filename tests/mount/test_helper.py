"""hubfs as a mount helper: `hubfs SOURCE MOUNTPOINT -o OPTIONS`, the way
mount(8) runs it through mount.fuse3 for an fstab line or `mount -t fuse.hubfs`.
SOURCE is hubspot, hubspot:<portal-id> or profile:<name>; mount(8)'s own
options are accepted and ignored; a portal other than SOURCE's is refused; and
under systemd (Type=notify) the daemon says READY=1 once it serves and
STOPPING=1 with the drain's time when it unmounts. hubfs is started here as
mount.fuse3 starts it (no -f: the command returns once the daemon serves, or
fails with the daemon's status) or, with foreground=True, as the systemd unit
does (-f); tests/package mounts the installed .deb through mount(8)."""
import json
import os
import signal
import socket
import subprocess

import pytest

from tests.mount.conftest import HUBFS, become_subreaper, launch

# What mount(8), fstab and mount.fuse3 put in -o besides hubfs's own options.
MOUNT_OPTS = ("noauto,auto,user,users,nouser,owner,group,_netdev,nofail,defaults,rw,dev,suid,"
              "relatime,x-systemd.automount,x-systemd.requires=network-online.target,"
              "x-gvfs-show,X-mount.mkdir,comment=crm")


def env_for(tmp_path, token=None):
    e = dict(os.environ)
    e.pop("HUBSPOT_TOKEN", None)
    if token:
        e["HUBSPOT_TOKEN"] = token
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    e["XDG_STATE_HOME"] = str(tmp_path / "state")
    e["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return e


def run_helper(tmp_path, args, env, name="mnt", allow=(), foreground=False):
    """Start hubfs ARGS (the mountpoint is added where MNT appears), with -f if
    foreground; return (Mount, None) once mounted, or (None, (exit status,
    stderr)) if it exited instead."""
    mnt = tmp_path / name
    mnt.mkdir(exist_ok=True)
    errfile = str(tmp_path / f"{name}.stderr")
    argv = [HUBFS] + (["-f"] if foreground else []) + \
        [str(mnt) if a == "MNT" else a for a in args]
    return launch(argv, mnt, errfile, env, env["XDG_STATE_HOME"], allow, foreground)


@pytest.fixture
def helper(sandbox, tmp_path):
    mounts = []
    become_subreaper()  # a daemon whose command returned is reparented to us

    def start(*args, env=None, name="mnt", allow=(), foreground=False):
        m, failed = run_helper(tmp_path, list(args), env or env_for(tmp_path, sandbox.token),
                               name=f"{name}{len(mounts)}", allow=allow, foreground=foreground)
        if m:
            mounts.append(m)
        return m, failed

    yield start
    for m in mounts:
        m.unmount()


def findmnt(path):
    r = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--mountpoint", str(path)],
                       capture_output=True, text=True, check=True)
    return r.stdout.split()


def first_record(m):
    name = sorted(f for f in os.listdir(m.p("contacts")) if f.endswith(".json"))[0]
    with open(m.p("contacts", name)) as f:
        return name, json.load(f)


def test_source_and_mount_options_are_accepted(sandbox, helper):
    portal = str(sandbox.portal_id)
    for source in ("hubspot", f"hubspot:{portal}"):
        m, failed = helper(source, "MNT", "-o", f"api_url={sandbox.url},{MOUNT_OPTS}")
        assert failed is None, failed
        assert findmnt(m.path) == [f"hubspot:{portal}", "fuse.hubfs"]
        name, rec = first_record(m)
        assert rec["id"] == name[:-5]
        assert json.load(open(m.p(".hubfs", "status.json")))["portal_id"] == sandbox.portal_id
        m.unmount()


def test_unknown_option_is_still_refused(sandbox, helper):
    """The ignore list is mount(8)'s options, not anything at all."""
    m, failed = helper("hubspot", "MNT", "-o", f"api_url={sandbox.url},noauto,bogus_option=1")
    assert m is None
    assert failed[0] != 0 and "bogus_option" in failed[1], failed


def test_other_portal_is_refused(sandbox, helper):
    other = sandbox.portal_id + 1
    sandbox.clear_log()
    m, failed = helper(f"hubspot:{other}", "MNT", "-o", f"api_url={sandbox.url}")
    assert m is None, "mounted a portal SOURCE does not name"
    assert failed[0] == 1
    assert f"portal {sandbox.portal_id}" in failed[1] and f"portal {other}" in failed[1], failed[1]
    assert "refusing to mount" in failed[1]
    # it asked who the token belongs to, and nothing else
    assert [e["path"] for e in sandbox.log()] == ["/account-info/v3/details"]
    # the same through the option, and an option contradicting SOURCE
    m, failed = helper("MNT", "-o", f"api_url={sandbox.url},portal={other}")
    assert m is None and "refusing to mount" in failed[1], failed
    m, failed = helper(f"hubspot:{sandbox.portal_id}", "MNT", "-o",
                       f"api_url={sandbox.url},portal={other}")
    assert m is None and "SOURCE names another portal" in failed[1], failed
    m, failed = helper("MNT", "-o", f"api_url={sandbox.url},portal={sandbox.portal_id}")
    assert failed is None, failed


@pytest.mark.parametrize("source, says", [
    ("bogus", "SOURCE must be hubspot, hubspot:<portal-id> or profile:<name>"),
    ("hubspot:", "is a number"),
    ("hubspot:12ab", "is a number"),
    ("profile:", "a profile name is"),
    ("profile:a/b", "a profile name is"),
])
def test_bad_source_is_refused(sandbox, helper, source, says):
    m, failed = helper(source, "MNT", "-o", f"api_url={sandbox.url}")
    assert m is None and failed[0] == 1 and says in failed[1], failed


def test_three_positionals_are_refused(sandbox, helper, tmp_path):
    m, failed = helper("hubspot", "MNT", str(tmp_path), "-o", f"api_url={sandbox.url}")
    assert m is None and "one SOURCE and one MOUNTPOINT" in failed[1], failed


def write_config(tmp_path, text, mode=0o600):
    d = tmp_path / "config" / "hubfs"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config").write_text(text)
    os.chmod(d / "config", mode)


def test_profile_source(sandbox, helper, tmp_path):
    tok = tmp_path / "token"
    tok.write_text(sandbox.token + "\n")
    os.chmod(tok, 0o600)
    write_config(tmp_path, f"""[hubfs]
ttl = 30
index_delay = 7

[profile crm]
api_url = {sandbox.url}
token_file = {tok}
ttl = 45
portal = {sandbox.portal_id}

[profile elsewhere]
api_url = {sandbox.url}
token_file = {tok}
portal = {sandbox.portal_id + 5}
""")
    env = env_for(tmp_path)  # no HUBSPOT_TOKEN: the profile's token_file
    m, failed = helper("profile:crm", "MNT", env=env)
    assert failed is None, failed
    st = m.status()
    assert st["ttl_s"] == 45  # the profile wins over [hubfs]
    assert st["portal_id"] == sandbox.portal_id
    name, rec = first_record(m)
    assert rec["id"] == name[:-5]
    m.unmount()
    m, failed = helper("profile:crm", "MNT", "-o", "ttl=50", env=env)  # -o wins over both
    assert failed is None, failed
    assert m.status()["ttl_s"] == 50
    m.unmount()
    m, failed = helper("profile:elsewhere", "MNT", env=env)
    assert m is None and "refusing to mount" in failed[1], failed
    m, failed = helper("profile:nosuch", "MNT", env=env)
    assert m is None and "has no [profile nosuch] section" in failed[1], failed


def test_profile_sections_obey_the_config_rules(sandbox, helper, tmp_path):
    """A [profile NAME] section is read by the same strict parser as [hubfs]:
    known keys only, no value that could add a mount option, every profile
    checked whether it is mounted or not; the file's ownership and mode rules
    hold for a profile mount; a secret in any profile needs mode 0600."""
    tok = tmp_path / "token"
    tok.write_text(sandbox.token + "\n")
    os.chmod(tok, 0o600)
    good = f"[profile crm]\napi_url = {sandbox.url}\ntoken_file = {tok}\n"
    env = env_for(tmp_path)
    for extra, says in (("[profile crm2]\nttl = 60,allow_other\n",
                         "[profile crm2] ttl: the value holds a comma"),
                        ("[profile other]\nallow_other = true\n",
                         "[profile other] allow_other: unknown key"),
                        ("[profile other]\ntoken = pat-na1-x\n", "token_file"),
                        ("[profile a:b]\nttl = 5\n", "a profile name is"),
                        ("[profile other]\nclient_secret = s3cret-x\n", "must be mode 0600")):
        write_config(tmp_path, good + extra, mode=0o644)
        for source in ("profile:crm", "hubspot"):
            m, failed = helper(source, "MNT", "-o", f"api_url={sandbox.url}", env=env)
            assert m is None and failed[0] == 1 and says in failed[1], (extra, source, failed)
            assert "s3cret" not in failed[1]
    # the ownership rule: a profile mount from a group-writable config
    write_config(tmp_path, good, mode=0o664)
    m, failed = helper("profile:crm", "MNT", env=env)
    assert m is None and "chmod go-w" in failed[1], failed
    assert not any(" allow_other" in l or ",allow_other" in l for l in open("/proc/mounts"))
    # portal= is a key like the others, in [hubfs] too
    write_config(tmp_path, f"[hubfs]\nportal = {sandbox.portal_id + 1}\n" + good, mode=0o644)
    m, failed = helper("MNT", "-o", f"api_url={sandbox.url}", env=env_for(tmp_path, sandbox.token))
    assert m is None and "refusing to mount" in failed[1], failed
    m, failed = helper("profile:crm", "MNT", env=env)
    assert m is None and "refusing to mount" in failed[1], failed
    write_config(tmp_path, "[hubfs]\nportal = x12\n" + good, mode=0o644)
    m, failed = helper("profile:crm", "MNT", env=env)
    assert m is None and "portal=x12: a portal id is a number" in failed[1], failed


def test_profile_without_config_file(sandbox, helper, tmp_path):
    m, failed = helper("profile:crm", "MNT", "-o", f"api_url={sandbox.url}")
    assert m is None and "there is no config file" in failed[1], failed


def test_profile_holds_oauth_credentials(sandbox, helper, tmp_path):
    """Each profile can be its own OAuth app / portal: its credentials come
    before [oauth]'s (which a profile may leave to share)."""
    sandbox.configure(client_id="prof-client", client_secret="prof-secret-x1",
                      refresh_token="prof-rt-y2")
    write_config(tmp_path, f"""[oauth]
client_id = prof-client
client_secret = prof-secret-x1
refresh_token = wrong-rt-of-another-portal

[profile crm]
api_url = {sandbox.url}
refresh_token = prof-rt-y2
""")
    m, failed = helper("profile:crm", "MNT", env=env_for(tmp_path))
    assert failed is None, failed
    assert m.status()["auth"]["mode"] == "oauth"
    first_record(m)
    # a profile's secrets obey the 0600 rule like the rest of the file
    m.unmount()
    write_config(tmp_path, f"[profile crm]\napi_url = {sandbox.url}\nclient_id = prof-client\n"
                 "client_secret = prof-secret-x1\nrefresh_token = prof-rt-y2\n", mode=0o644)
    m, failed = helper("profile:crm", "MNT", env=env_for(tmp_path))
    assert m is None and "must be mode 0600" in failed[1], failed


def version_has_sd_notify():
    out = subprocess.run([HUBFS, "--version"], capture_output=True, text=True, check=True).stdout
    return "sd_notify): yes" in out


@pytest.mark.parametrize("foreground", [True, False], ids=["unit-f", "background"])
def test_sd_notify_ready_and_stopping(sandbox, helper, tmp_path, foreground):
    """What a Type=notify unit relies on: READY=1 only once the mount serves,
    STOPPING=1 with EXTEND_TIMEOUT_USEC = drain_timeout + 30 s at unmount, and
    exit 0 on SIGTERM (systemctl stop). The unit runs -f; without it the
    daemon (a child of the command) says so, with its own pid as MAINPID."""
    if not version_has_sd_notify():
        pytest.skip("built without libsystemd (hubfs --version)")
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    try:
        env = env_for(tmp_path, sandbox.token)
        env["NOTIFY_SOCKET"] = path
        m, failed = helper("MNT", "-o", f"api_url={sandbox.url},drain_timeout=12", env=env,
                           foreground=foreground)
        assert failed is None, failed
        msg = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in msg.split("\n") if line)
        assert fields["READY"] == "1" and fields["MAINPID"] == str(m.pid), msg
        assert foreground == (m.pid == m.proc.pid)
        assert os.path.ismount(m.path)  # it was mounted when it said so
        assert str(sandbox.portal_id) in fields["STATUS"]
        m.signal(signal.SIGTERM)  # systemctl stop
        msg = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in msg.split("\n") if line)
        assert fields["STOPPING"] == "1" and fields["EXTEND_TIMEOUT_USEC"] == str(42 * 10**6), msg
        assert m.wait_exit(60) == 0, m.stderr()
        m.unmounted = True
        assert not os.path.ismount(m.path)
    finally:
        sock.close()


@pytest.mark.parametrize("foreground", [True, False], ids=["unit-f", "background"])
def test_sigterm_drains_the_queue(sandbox, helper, foreground):
    """systemctl stop sends SIGTERM: the queued edit is sent before hubfs exits 0."""
    m, failed = helper("MNT", "-o", f"api_url={sandbox.url},writeback_delay_ms=600000",
                       foreground=foreground)
    assert failed is None, failed
    name, rec = first_record(m)
    rec["properties"]["jobtitle"] = "Stopped Cleanly"
    with open(m.p("contacts", name), "w") as f:
        json.dump(rec, f)
    # queued, not sent (writeback_delay_ms is 10 minutes)
    assert sandbox.record("contacts", rec["id"])["properties"].get("jobtitle") != "Stopped Cleanly"
    m.signal(signal.SIGTERM)
    assert m.wait_exit(60) == 0, m.stderr()
    m.unmounted = True
    assert not os.path.ismount(m.path)
    assert sandbox.record("contacts", rec["id"])["properties"]["jobtitle"] == "Stopped Cleanly"
