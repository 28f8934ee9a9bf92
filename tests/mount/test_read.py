"""The read path: layout, record files, listings, associations, names, xattrs,
status — all through real syscalls on a real mount, API calls counted from the
sandbox's request log."""
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from datetime import datetime, timezone

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, api_get, count, shown_props, wait_for

LIST = r"^/crm/v3/objects/contacts$"


def test_root_layout(sandbox, hubfs):
    m = hubfs("types=core")  # every type: tests/mount/test_types.py
    names = sorted(os.listdir(m.path))
    assert names == [".hubfs", "companies", "contacts", "deals", "owners", "pipelines",
                     "schema", "search", "tickets"]
    assert sorted(os.listdir(m.p("schema"))) == ["companies.json", "contacts.json", "deals.json",
                                                 "labels", "tickets.json"]
    assert sorted(os.listdir(m.p("pipelines"))) == ["deals.json", "tickets.json"]
    st = os.stat(m.p("contacts"))
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def test_cold_ls_then_cat_and_grep_cost(sandbox, hubfs):
    sandbox.reset(contacts=1000, companies=50, deals=50, tickets=10)
    m = hubfs()
    sandbox.clear_log()

    out = m.run(["ls", "-l", "contacts/"]).stdout
    files = [l.split()[-1] for l in out.splitlines() if l.endswith(".json")]
    assert len(files) == 1000
    # list pages up from the bottom, search pages (200) down from the top
    lists = count(sandbox, "GET", LIST) + count(sandbox, "POST", r"^/crm/v3/objects/contacts/search$")
    assert lists <= 10, api_calls(sandbox)
    assert count(sandbox, "GET", r"^/crm/v3/properties/contacts$") == 1
    assert count(sandbox, "POST", r"/batch/read$") == 0
    total = len(sandbox.log())
    assert total <= lists + 1 + 1, api_calls(sandbox)  # lists + schema (+ nothing else)

    # Every size ls reported is exact, and cat/grep cost nothing more.
    sizes = {l.split()[-1]: int(l.split()[4]) for l in out.splitlines() if l.endswith(".json")}
    cat = m.run("cat contacts/*.json").stdout
    assert len(cat.encode()) == sum(sizes.values())
    m.run(["grep", "-rl", "@", "contacts/"])
    m.run("find contacts -name '*.json' | wc -l")
    assert len(sandbox.log()) == total, api_calls(sandbox)

    # Every file is JSON and matches the sandbox's record, value for value.
    props = shown_props(sandbox, "contacts")
    for name in files[:1000:37]:
        with open(m.p("contacts", name), "rb") as f:
            data = f.read()
        assert len(data) == sizes[name]
        rec = json.loads(data)
        assert list(rec) == ["id", "properties", "createdAt", "updatedAt", "archived"]
        assert list(rec["properties"]) == sorted(rec["properties"])
        assert data.endswith(b"}\n")
        truth = api_get(sandbox, f"/crm/v3/objects/contacts/{rec['id']}?properties={','.join(props)}")
        assert rec["id"] == truth["id"] and name == f"{truth['id']}.json"
        for p in props:
            assert rec["properties"][p] == truth["properties"].get(p), p
        assert rec["createdAt"] == truth["createdAt"]
        assert rec["updatedAt"] == truth["updatedAt"]
        assert rec["archived"] is False


def test_another_client_on_the_budget_keeps_listings_off_search(sandbox, hubfs):
    """Search's 5 a second belong to the whole account and its answers carry
    no rate headers, so a mount that sees another client of the app spending
    the same 10-s budget (X-HubSpot-RateLimit-Remaining lower than its own
    calls explain) lists without the search side: four mounts listing at once
    would otherwise send 20 searches a second."""
    sandbox.reset(contacts=1000, companies=1000, deals=5, tickets=5)
    sandbox.configure(rate_limit="100/10s")
    m = hubfs()
    sandbox.clear_log()
    assert len([f for f in os.listdir(m.p("contacts")) if f.endswith(".json")]) == 1000
    assert count(sandbox, "POST", r"^/crm/v3/objects/contacts/search$") > 0, api_calls(sandbox)
    assert m.status()["rate"]["others_lately"] is False

    for _ in range(8):  # another client of the app, as hubfs's calls go out
        assert sandbox.api("GET", "/crm/v3/objects/deals", query={"limit": 1}).status == 200
    sandbox.clear_log()
    assert len([f for f in os.listdir(m.p("companies")) if f.endswith(".json")]) == 1000
    assert count(sandbox, "POST", r"^/crm/v3/objects/companies/search$") == 0, api_calls(sandbox)
    assert count(sandbox, "GET", r"^/crm/v3/objects/companies$") == 10, api_calls(sandbox)
    assert count(sandbox, status=429) == 0, api_calls(sandbox)
    # (status.json is a snapshot a second old at most)
    assert wait_for(lambda: m.status()["rate"]["others_lately"] is True, timeout=5)


def test_record_stat_matches_content(sandbox, hubfs):
    m = hubfs()
    name = sorted(os.listdir(m.p("contacts")))[0]
    path = m.p("contacts", name)
    st = os.stat(path)
    with open(path, "rb") as f:
        data = f.read()
    assert st.st_size == len(data)
    rec = json.loads(data)
    upd = datetime.strptime(rec["updatedAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(st.st_mtime - upd.timestamp()) < 0.002
    assert stat.S_IMODE(st.st_mode) == 0o600  # umask 077 by default
    assert st.st_uid == os.getuid()
    # Every shown property appears, null when unset.
    for p in shown_props(sandbox, "contacts"):
        assert p in rec["properties"]


def test_uncached_record_fetches_neighbours(sandbox, hubfs):
    """A record read before any listing costs one batch/read, which takes up to
    99 known neighbours along (here: the targets of an association dir)."""
    m = hubfs()
    deal = sorted(os.listdir(m.p("deals")))[0][:-5]
    sandbox.clear_log()
    links = os.listdir(m.p("deals", deal, "contacts"))
    assert links
    got = {}
    for l in links:
        with open(m.p("deals", deal, "contacts", l)) as f:
            got[l[:-5]] = json.load(f)
            assert got[l[:-5]]["id"] == l[:-5]
    reads = count(sandbox, "POST", r"^/crm/v3/objects/contacts/batch/read$")
    assert reads == 1, api_calls(sandbox)
    # values read through batch/read are the shown properties, not the defaults
    props = shown_props(sandbox, "contacts")
    for rid, rec in got.items():
        truth = api_get(sandbox, f"/crm/v3/objects/contacts/{rid}?properties={','.join(props)}")
        for p in props:
            assert rec["properties"][p] == truth["properties"].get(p), (rid, p)


def test_associations(sandbox, hubfs):
    sandbox.reset(contacts=300, companies=60, deals=200, tickets=20)
    m = hubfs("types=core")  # the four's pairs; every type: test_types.py
    deals = sorted(f[:-5] for f in os.listdir(m.p("deals")) if f.endswith(".json"))
    assert len(deals) == 200

    # Cold: every deal's contacts, read through the links.
    sandbox.clear_log()
    script = "for d in deals/*.json; do id=${d#deals/}; cat deals/${id%.json}/contacts/*.json; done"
    out = m.run(["bash", "-c", script]).stdout
    assoc = count(sandbox, "POST", r"^/crm/v4/associations/deals/contacts/batch/read$")
    assert 1 <= assoc <= 3, api_calls(sandbox)
    # the contacts themselves came in batches of 100, not one call each
    assert count(sandbox, "POST", r"^/crm/v3/objects/contacts/batch/read$") <= 4, api_calls(sandbox)
    assert count(sandbox, "GET", r"^/crm/v3/objects/contacts/\d+") == 0
    assert out.count('"id"') >= 200

    d = deals[3]
    # resolvable but not listed
    assert d not in os.listdir(m.p("deals"))
    assert stat.S_ISDIR(os.stat(m.p("deals", d)).st_mode)
    names = set(os.listdir(m.p("deals", d)))
    assert {"associations.json", "companies", "contacts", "tickets"} <= names
    assert "deals" not in names and "products" not in names
    truth = api_get(sandbox, f"/crm/v4/objects/deals/{d}/associations/contacts")
    want = sorted(f"{r['toObjectId']}.json" for r in truth["results"])
    got = sorted(os.listdir(m.p("deals", d, "contacts")))
    assert got == want and got
    link = m.p("deals", d, "contacts", got[0])
    assert os.readlink(link) == f"../../../contacts/{got[0]}"
    assert os.path.islink(link)
    with open(link) as f:
        assert json.load(f)["id"] == got[0][:-5]
    # the inverse side resolves too
    c = got[0][:-5]
    assert f"{d}.json" in os.listdir(m.p("contacts", c, "deals"))


def test_link_a_read_finds_gone_stops_resolving(sandbox, hubfs):
    """The kernel keeps a link it looked up for ttl (60 s here): when a read of
    the list (here after SIGHUP made everything stale) no longer finds it, the
    link stops resolving at once, as the listing shows."""
    sandbox.reset(contacts=8, companies=4, deals=2, tickets=2)
    m = hubfs("ttl=60")
    cid = sorted(f[:-5] for f in os.listdir(m.p("contacts")) if f.endswith(".json"))[0]
    co = sorted(f[:-5] for f in os.listdir(m.p("companies")) if f.endswith(".json"))[0]
    sandbox.associate("contacts", cid, "companies", co)
    link = m.p("contacts", cid, "companies", f"{co}.json")
    assert os.readlink(link) == f"../../../companies/{co}.json"
    sandbox.unassociate("contacts", cid, "companies", co)
    sandbox.clear_log()
    m.signal(signal.SIGHUP)
    assert wait_for(lambda: f"{co}.json" not in os.listdir(os.path.dirname(link)), 5)
    assert wait_for(lambda: not os.path.lexists(link), 3)
    with pytest.raises(FileNotFoundError):
        os.readlink(link)
    # the list read again once; nothing else for it
    assert count(sandbox, "POST", r"^/crm/v4/associations/contacts/companies/batch/read$") == 1, \
        api_calls(sandbox)


def test_find_L_does_not_loop(sandbox, hubfs):
    sandbox.reset(contacts=20, companies=5, deals=10, tickets=3)
    m = hubfs()
    d = sorted(os.listdir(m.p("deals")))[0][:-5]
    r = m.run(["find", "-L", f"deals/{d}"])
    assert "loop" not in r.stderr
    assert any(l.endswith(".json") for l in r.stdout.splitlines())


@pytest.mark.parametrize("name,err", [
    ("contacts/abc.json", errno.ENOENT),
    ("contacts/0101.json", errno.ENOENT),
    ("contacts/99999999.json", errno.ENOENT),
    ("contacts/101.txt", errno.ENOENT),
    ("contacts/nosuchdir/x", errno.ENOENT),
    ("nosuch", errno.ENOENT),
    ("contacts/" + "1" * 300 + ".json", errno.ENAMETOOLONG),
    ("contacts/" + "9" * 40 + ".json", errno.ENOENT),
    ("schema/nosuch.json", errno.ENOENT),
    (".hubfs/nosuch", errno.ENOENT),
    ("owners/abc.json", errno.ENOENT),
])
def test_bad_names(sandbox, hubfs, name, err):
    m = hubfs()
    with pytest.raises(OSError) as e:
        os.stat(m.p(name))
    assert e.value.errno == err
    assert os.path.ismount(m.path) and m.alive()


def test_dotdot_and_deep_names(sandbox, hubfs):
    m = hubfs()
    ids = sorted(os.listdir(m.p("contacts")))
    # .. resolves in the kernel, staying inside the mount
    assert os.path.realpath(m.p("contacts", "..", "x")) == m.p("x")
    with pytest.raises(FileNotFoundError):
        os.stat(m.p("contacts", "..", "x"))
    with pytest.raises(NotADirectoryError):
        os.stat(m.p("contacts", ids[0], "x"))
    c = ids[0][:-5]
    with pytest.raises(FileNotFoundError):
        os.stat(m.p("contacts", c, "contacts"))  # no self-type association dir
    with pytest.raises(FileNotFoundError):
        os.stat(m.p("contacts", c, "companies", "1.json"))


def test_readonly_mount_and_writes(sandbox, hubfs):
    m = hubfs("ro")
    name = sorted(os.listdir(m.p("contacts")))[0]
    assert stat.S_IMODE(os.stat(m.p("contacts", name)).st_mode) == 0o400
    with pytest.raises(OSError) as e:
        open(m.p("contacts", "new.json"), "w")
    assert e.value.errno in (errno.EROFS, errno.EACCES)
    with pytest.raises(OSError) as e:
        os.mkdir(m.p("contacts", "x"))
    assert e.value.errno == errno.EROFS
    with open(m.p("contacts", name)) as f:
        json.load(f)


def test_xattrs(sandbox, hubfs):
    m = hubfs()
    name = sorted(os.listdir(m.p("contacts")))[0]
    path = m.p("contacts", name)
    url = os.getxattr(path, "user.hubspot.url").decode()
    assert url.endswith(f"/record/0-1/{name[:-5]}") and str(sandbox.portal_id) in url
    assert os.getxattr(path, "user.hubfs.state") == b"clean"
    assert sorted(os.listxattr(path)) == ["user.hubfs.state", "user.hubspot.url"]
    with pytest.raises(OSError) as e:
        os.getxattr(path, "user.nosuch")
    assert e.value.errno == errno.ENODATA
    # other namespaces are not supported: ls -l stops asking for SELinux
    # labels and ACLs after the first file (two round trips a file before)
    for other in ("security.selinux", "system.posix_acl_access"):
        with pytest.raises(OSError) as e:
            os.getxattr(path, other)
        assert e.value.errno == errno.EOPNOTSUPP, other


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_ls_l_asks_no_xattr_per_file(sandbox, hubfs):
    """ls -l looks for an SELinux label and an ACL on every file; hubfs says
    once that it has neither (EOPNOTSUPP), and ls stops asking."""
    m = hubfs()
    n = len(os.listdir(m.p("contacts")))
    assert n >= 20
    r = subprocess.run(["strace", "-f", "-e", "trace=getxattr,lgetxattr", "-o", "/dev/stdout",
                        "-qq", "ls", "-l", m.p("contacts")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    calls = [ln for ln in r.stdout.splitlines() if "getxattr(" in ln]
    assert len(calls) <= 4, calls[:8]


def test_chmod_utime_are_noops(sandbox, hubfs):
    m = hubfs()
    path = m.p("contacts", sorted(os.listdir(m.p("contacts")))[0])
    before = os.stat(path)
    os.chmod(path, 0o644)
    os.utime(path, (1, 1))
    after = os.stat(path)
    assert stat.S_IMODE(after.st_mode) == 0o600 and after.st_mtime == before.st_mtime


def test_schema_pipelines_owners(sandbox, hubfs):
    m = hubfs()
    for t in ("contacts", "companies", "deals", "tickets"):
        with open(m.p("schema", f"{t}.json")) as f:
            defs = json.load(f)
        names = [d["name"] for d in defs]
        assert names == sorted(names) and "hubspot_owner_id" in names
        st = os.stat(m.p("schema", f"{t}.json"))
        assert stat.S_IMODE(st.st_mode) == 0o400
        assert st.st_size == len(open(m.p("schema", f"{t}.json"), "rb").read())
    deals = json.load(open(m.p("pipelines", "deals.json")))
    assert any(s["id"] == "closedwon" for p in deals for s in p["stages"])
    owners = os.listdir(m.p("owners"))
    assert owners and all(o.endswith(".json") for o in owners)
    o = json.load(open(m.p("owners", owners[0])))
    assert f"{o['id']}.json" == owners[0]


def test_status_file_and_command(sandbox, hubfs):
    m = hubfs()
    os.listdir(m.p("contacts"))
    st = m.status()
    assert st["online"] is True
    assert st["portal_id"] == sandbox.portal_id
    assert sum(st["api_calls"].values()) >= 2
    assert st["cache"]["records"] >= 1
    assert st["types"]["contacts"]["listing_complete"] is True
    size = os.stat(m.p(".hubfs", "status.json")).st_size
    assert size > 0
    out = subprocess.run([HUBFS, "status", m.path],
                         capture_output=True, text=True, check=True).stdout
    assert "online" in out and "API calls" in out and "contacts" in out


def test_token_never_in_argv_status_or_logs(sandbox, hubfs):
    m = hubfs("log_level=debug")
    os.listdir(m.p("contacts"))
    with open(f"/proc/{m.pid}/cmdline", "rb") as f:
        assert sandbox.token.encode() not in f.read()
    assert sandbox.token not in open(m.p(".hubfs", "status.json")).read()
    m.unmount()
    assert sandbox.token not in m.stderr()


def test_token_file_must_be_private(sandbox, hubfs, tmp_path):
    tf = tmp_path / "token"
    tf.write_text(sandbox.token + "\n")
    os.chmod(tf, 0o644)
    m = hubfs(f"token_file={tf}", token="", wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True
    assert "0600" in m.stderr()
    os.chmod(tf, 0o600)
    m2 = hubfs(f"token_file={tf}", token="")
    assert len(os.listdir(m2.p("contacts"))) > 0


def test_remote_change_seen_after_ttl(sandbox, hubfs):
    m = hubfs("ttl=2")
    name = sorted(os.listdir(m.p("contacts")))[0]
    rid = name[:-5]
    old = json.load(open(m.p("contacts", name)))
    sandbox.update("contacts", rid, {"jobtitle": "Chief Tester"})
    assert json.load(open(m.p("contacts", name)))["properties"]["jobtitle"] == old["properties"]["jobtitle"]
    time.sleep(2.5)
    # stale-while-revalidate: the access after ttl starts a background refresh
    deadline = time.time() + 15
    while time.time() < deadline:
        with open(m.p("contacts", name)) as f:
            if json.load(f)["properties"]["jobtitle"] == "Chief Tester":
                break
        time.sleep(0.3)
    with open(m.p("contacts", name)) as f:
        assert json.load(f)["properties"]["jobtitle"] == "Chief Tester"



def test_mount_fails_cleanly_without_server(sandbox, hubfs):
    m = hubfs("api_url=http://127.0.0.1:9", "op_timeout=3", wait=False)
    assert m.proc.wait(timeout=60) != 0
    m.unmounted = True
    assert "cannot reach HubSpot" in m.stderr()


def test_refuses_plain_http_to_remote_host(sandbox, hubfs):
    m = hubfs("api_url=http://api.hubapi.com", wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True


def test_parallel_readers_cause_no_429(sandbox, hubfs):
    """ls, cat, grep -r and find in parallel over 1,000+ records, with a ttl
    short enough that they keep refetching, against a sandbox enforcing
    100 requests/10 s: the limiter keeps hubfs under it."""
    sandbox.reset(contacts=1000, companies=200, deals=300, tickets=100)
    sandbox.configure(rate_limit="100/10s")
    # ttl and relists every second keep them refetching (incremental refreshes
    # alone are too cheap to press the limiter)
    # A background relist starved by the readers' calls may run out of time
    # (a warning, and the previous listing stays): not what is checked here.
    m = hubfs("ttl=1", "relist_interval=1", "op_timeout=60",
              allow=(r"listing \w+: .*(Timeout was reached|timed out)",))
    jobs = [
        "ls -l contacts companies deals tickets > /dev/null",
        "cat contacts/*.json > /dev/null",
        "grep -rl Manager contacts deals > /dev/null",
        "find contacts tickets -name '*.json' | wc -l > /dev/null",
        "for d in $(ls deals | grep json | head -150); do cat deals/${d%.json}/contacts/*.json; done > /dev/null",
    ]
    running = {}
    t_end = time.time() + 20
    while time.time() < t_end:
        for j in jobs:
            p = running.get(j)
            if p is not None and p.poll() is not None:
                assert p.returncode == 0, (j, p.stderr.read())
                p = None
            if p is None:
                running[j] = subprocess.Popen(["bash", "-c", j], cwd=m.path,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.2)
    for j, p in running.items():
        assert p.wait(timeout=120) == 0, (j, p.stderr.read())
    total = len(sandbox.log())
    assert total > 100, api_calls(sandbox)  # the limiter was really exercised
    assert count(sandbox, status=429) == 0, api_calls(sandbox)
    assert m.status()["http_429"] == 0


def test_mount_options_and_private_state(sandbox, hubfs, tmp_path):
    m = hubfs()
    os.listdir(m.p("contacts"))
    line = next(l for l in open("/proc/mounts") if f" {m.path} " in l)
    dev, _, fstype, opts = line.split()[:4]
    assert dev == f"hubspot:{sandbox.portal_id}" and fstype == "fuse.hubfs"
    assert "default_permissions" in opts and "allow_other" not in opts
    state = tmp_path / "state" / "hubfs" / str(sandbox.portal_id)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for f in os.listdir(state):
        assert stat.S_IMODE(os.stat(state / f).st_mode) & 0o077 == 0, f
    # the token is nowhere in the state directory either
    for f in os.listdir(state):
        assert sandbox.token.encode() not in (state / f).read_bytes(), f


def test_tls_verification(sandbox, hubfs, tmp_path):
    """A self-signed HTTPS HubSpot is refused unless its CA is given."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    portfile = tmp_path / "tls.port"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    srv = subprocess.Popen(["/usr/bin/python3", "-m", "tests.sandbox", "--port", "0",
                            "--port-file", str(portfile), "--token", sandbox.token,
                            "--contacts", "20", "--companies", "2", "--deals", "2", "--tickets", "1",
                            "--tls-cert", str(cert), "--tls-key", str(key)], cwd=root,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not (portfile.exists() and portfile.read_text().strip()) and time.time() < deadline:
            time.sleep(0.1)
        url = f"https://127.0.0.1:{portfile.read_text().strip()}"
        bad = hubfs(f"api_url={url}", "op_timeout=3", wait=False)
        assert bad.proc.wait(timeout=60) != 0
        bad.unmounted = True
        assert "cannot reach HubSpot" in bad.stderr()
        good = hubfs(f"api_url={url}", f"ca_file={cert}")
        assert len([f for f in os.listdir(good.p("contacts")) if f.endswith(".json")]) == 20
        good.unmount()
    finally:
        srv.terminate()
        srv.wait(timeout=30)
