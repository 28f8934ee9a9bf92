"""A team of mounts through Redis (-o redis=): one refresh per type and ttl
for all of them, a write landed through one mount seen through the others at
once (their query directories too), Redis killed and restarted mid-run, the
password kept out of argv, logs and status. A real redis-server on a unix
socket, started and stopped by pid; API calls counted from the sandbox log.

Every mount of a test has its own state directory (one mount per portal and
state directory), so they run in the foreground (-f) where the fixture knows
the pid without the state directory's mount lock."""
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from tests.mount.conftest import HUBFS
from tests.mount.util import api_calls, calls, count, ids, sync
from tests.mount import util

SEARCH = r"^/crm/v3/objects/contacts/search$"
READ = r"^/crm/v3/objects/contacts/batch/read$"
UPDATE = r"^/crm/v3/objects/contacts/batch/update$"
PASSWORD = "team-redis-pw-8d1f0c"


class Redis:
    """A redis-server of this test on a unix socket, nothing persisted."""

    def __init__(self, tmp, password=None):
        self.dir = tmp / "redis"
        self.dir.mkdir(exist_ok=True)
        self.sock = str(self.dir / "redis.sock")
        self.conf = str(self.dir / "redis.conf")
        with open(self.conf, "w") as f:  # the password stays out of redis-server's argv too
            f.write(f"port 0\nunixsocket {self.sock}\nunixsocketperm 700\nsave \"\"\n"
                    f"appendonly no\ndir {self.dir}\nlogfile {self.dir}/redis.log\n")
            if password:
                f.write(f"requirepass {password}\n")
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"unix:{self.sock}"

    def start(self):
        self.proc = subprocess.Popen(["redis-server", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 10
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, "redis-server exited at start"
            assert time.time() < end, "redis-server did not open its socket"
            time.sleep(0.02)

    def kill(self):
        """SIGKILL: nothing said to the clients."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.kill()


def team_mount(hubfs, tmp_path, redis_url, i, *opts, **kw):
    # as on machines of their own: a state directory and a disk cache each
    env = {"XDG_STATE_HOME": str(tmp_path / f"state{i}"), "XDG_CACHE_HOME": str(tmp_path / f"cache{i}")}
    env.update(kw.pop("env", {}))
    return hubfs(f"redis={redis_url}", *opts, foreground=True, env=env, **kw)


def wait_for(fn, timeout=15, step=0.1):
    return util.wait_for(fn, timeout, step)


def jobtitle(m, rid):
    with open(m.p("contacts", f"{rid}.json")) as f:
        return json.load(f)["properties"].get("jobtitle")


def edit(m, rid, value):
    p = m.p("contacts", f"{rid}.json")
    with open(p) as f:
        d = json.load(f)
    d["properties"]["jobtitle"] = value
    with open(p, "w") as f:
        f.write(json.dumps(d, indent=2))


def team_status(m):
    return m.status().get("team") or {}


def test_idle_refresh_one_search_per_period_for_the_team(sandbox, redis, hubfs, tmp_path):
    sandbox.reset(contacts=150, companies=5, deals=5, tickets=5)
    sandbox.configure(index_delay=1)
    ttl = 2
    ms = [team_mount(hubfs, tmp_path, redis.url, i, f"ttl={ttl}", "index_delay=1")
          for i in range(3)]
    rid = sorted(f[:-5] for f in os.listdir(ms[0].p("contacts")) if f.endswith(".json"))[7]
    for m in ms:
        assert len(os.listdir(m.p("contacts"))) >= 150
        jobtitle(m, rid)
    sandbox.clear_log()
    # Every mount keeps reading (so each would refresh when its copy goes
    # stale) for about four ttl periods.
    start = time.time()
    holders = set()
    while time.time() - start < 4 * ttl:
        for m in ms:
            jobtitle(m, rid)
            os.listdir(m.p("contacts"))
        holders |= {le["holder"] for le in team_status(ms[0]).get("leases", [])
                    if le["name"] == "refresh/0-1"}
        time.sleep(0.25)
    elapsed = time.time() - start
    time.sleep(0.5)
    searches = count(sandbox, "POST", SEARCH)
    periods = int(elapsed / ttl) + 1
    # Alone, each mount searches once a period: about 3 * periods here.
    assert 2 <= searches <= periods + 1, (searches, periods, api_calls(sandbox))
    # Nothing changed: no record was read again.
    assert count(sandbox, "POST", READ) == 0, api_calls(sandbox)
    st = [team_status(m) for m in ms]
    assert all(s.get("connected") for s in st), st
    # The others took the holder's refreshes instead of searching.
    assert sum(1 for s in st if s["applied"]["refresh"] >= 2) >= 2, st
    print(f"3 mounts, {elapsed:.1f} s at ttl {ttl} s: {searches} search(es)")
    assert len(st[0]["mounts_seen"]) == 3, st[0]
    assert holders and holders <= {s["mount_id"] for s in st}, holders


def test_write_through_one_mount_is_seen_through_another(sandbox, redis, hubfs, tmp_path):
    sandbox.reset(contacts=120, companies=5, deals=5, tickets=5)
    sandbox.configure(index_delay=30)  # search lags far behind: only the team can tell B
    a = team_mount(hubfs, tmp_path, redis.url, 0, "ttl=120", "writeback_delay_ms=100")
    b = team_mount(hubfs, tmp_path, redis.url, 1, "ttl=120")
    ids = sorted(f[:-5] for f in os.listdir(b.p("contacts")) if f.endswith(".json"))
    rid = ids[3]
    q = "jobtitle=Team Lead 7"
    before = jobtitle(b, rid)
    assert before != "Team Lead 7"
    assert os.listdir(b.p("search", "contacts", q)) == []  # B has HubSpot's answer, kept for ttl
    jobtitle(a, rid)
    seq = sandbox.last_seq()

    edit(a, rid, "Team Lead 7")
    sync(a)
    assert count(sandbox, "POST", UPDATE) == 1, api_calls(sandbox)
    landed = time.time()
    assert wait_for(lambda: jobtitle(b, rid) == "Team Lead 7", timeout=10), \
        (team_status(b), api_calls(sandbox))
    seen = time.time() - landed
    assert wait_for(lambda: os.listdir(b.p("search", "contacts", q)) == [f"{rid}.json"],
                    timeout=10), team_status(b)
    # B read the record once, in a batch read, and searched nothing again
    # (its search answer is kept for ttl; the team's change is overlaid).
    after = calls(sandbox, since=seq)
    assert sum(1 for e in after if e["path"].endswith("/contacts/search")) == 0, api_calls(sandbox)
    reads = [e for e in after if e["path"].endswith("/contacts/batch/read")]
    assert 1 <= len(reads) <= 2, api_calls(sandbox)
    assert team_status(b)["applied"]["update"] >= 1
    print(f"B saw A's landed edit after {seen:.2f} s")


def test_create_link_and_archive_through_one_mount_reach_the_others(sandbox, redis, hubfs,
                                                                     tmp_path):
    sandbox.reset(contacts=60, companies=5, deals=5, tickets=5)
    sandbox.configure(index_delay=30)
    a = team_mount(hubfs, tmp_path, redis.url, 0, "ttl=120", "writeback_delay_ms=100",
                   "allow_delete")
    b = team_mount(hubfs, tmp_path, redis.url, 1, "ttl=120")
    ids = sorted(f[:-5] for f in os.listdir(b.p("contacts")) if f.endswith(".json"))
    os.listdir(a.p("contacts"))

    # a create through A joins B's listing
    p = a.p("contacts", "_new", "teammate.json")
    with open(p, "w") as f:
        json.dump({"properties": {"email": "teammate@team.test", "firstname": "Team"}}, f)
    sync(a)
    new = os.readlink(p)[3:-5]
    assert wait_for(lambda: f"{new}.json" in os.listdir(b.p("contacts")), timeout=10), \
        team_status(b)
    with open(b.p("contacts", f"{new}.json")) as f:
        assert json.load(f)["properties"]["email"] == "teammate@team.test"

    # a link made through A shows in B's association directory (held there)
    c = ids[1]
    have = set(os.listdir(b.p("contacts", c, "companies")))
    comp = next(f for f in sorted(os.listdir(b.p("companies")))
                if f.endswith(".json") and f not in have)
    os.listdir(a.p("contacts", c, "companies"))
    os.symlink(f"../../../companies/{comp}", a.p("contacts", c, "companies", comp))
    sync(a)
    assert wait_for(lambda: comp in os.listdir(b.p("contacts", c, "companies")), timeout=10), \
        team_status(b)
    assert team_status(b)["applied"]["assoc"] >= 1
    # and once A removes it, the link B looked up (kept for ttl, 120 s) stops
    # resolving there at once
    blink = b.p("contacts", c, "companies", comp)
    assert os.readlink(blink) == f"../../../companies/{comp}"
    os.unlink(a.p("contacts", c, "companies", comp))
    sync(a)
    assert wait_for(lambda: not os.path.lexists(blink), timeout=10), team_status(b)
    assert comp not in os.listdir(b.p("contacts", c, "companies"))

    # an archive through A leaves B's listing
    rid = ids[2]
    with open(b.p("contacts", f"{rid}.json")) as f:
        f.read()
    os.unlink(a.p("contacts", f"{rid}.json"))
    sync(a)
    assert wait_for(lambda: f"{rid}.json" not in os.listdir(b.p("contacts")), timeout=10), \
        team_status(b)
    assert not os.path.exists(b.p("contacts", f"{rid}.json"))
    assert team_status(b)["applied"]["archive"] == 1


@pytest.mark.faults
def test_writes_whose_answer_was_lost_reach_the_others_once_found_landed(sandbox, redis, hubfs,
                                                                         tmp_path):
    """HubSpot applies a create, an upsert and an edit made through A, then the
    connection drops before each answer (drop_after): A's writes go in doubt,
    its lookups find them landed, and A publishes each once, as it does a
    write whose answer came. B (ttl 120 s: no refresh of its own) lists both
    new records and shows the edit within seconds."""
    sandbox.reset(contacts=40, companies=5, deals=5, tickets=5)
    sandbox.configure(index_delay=1)  # A's search for its in-doubt deal finds it after 1 s
    a = team_mount(hubfs, tmp_path, redis.url, 0, "ttl=120", "writeback_delay_ms=100",
                   "index_delay=1", allow=("warning", "answer lost", "in doubt", "in-doubt"))
    b = team_mount(hubfs, tmp_path, redis.url, 1, "ttl=120")
    for m in (a, b):
        os.listdir(m.p("contacts"))
        os.listdir(m.p("deals"))
    rid = ids(b, "contacts")[3]
    assert jobtitle(b, rid) != "Answer Lost" and jobtitle(a, rid) != "Answer Lost"
    writes = {"create": r"^/crm/v3/objects/deals/batch/create$",
              "upsert": r"^/crm/v3/objects/contacts/batch/upsert$",
              "update": r"^/crm/v3/objects/contacts/batch/update$"}
    for path in writes.values():
        sandbox.fault("drop_after", count=1, path=path)
    published, received = team_status(a)["published"], team_status(b)["received"]
    seq = sandbox.last_seq()

    with open(a.p("deals", "_new", "lost.json"), "w") as f:
        json.dump({"properties": {"dealname": "Answer Lost Deal", "pipeline": "default",
                                  "dealstage": "appointmentscheduled"}}, f)
    with open(a.p("contacts", "_new", "lost.json"), "w") as f:
        json.dump({"properties": {"email": "answer.lost@team.test", "firstname": "Lost"}}, f)
    edit(a, rid, "Answer Lost")
    sync(a)
    assert sandbox.faults() == [], "a write never reached the dropping server"
    assert a.status()["in_doubt"] == {"answers_lost": 3, "found_landed": 3, "not_landed": 0}, \
        a.status()["in_doubt"]
    deal = os.readlink(a.p("deals", "_new", "lost.json"))[3:-5]
    contact = os.readlink(a.p("contacts", "_new", "lost.json"))[3:-5]

    assert wait_for(lambda: f"{deal}.json" in os.listdir(b.p("deals")), timeout=10), \
        (team_status(b), api_calls(sandbox))
    assert wait_for(lambda: f"{contact}.json" in os.listdir(b.p("contacts")), timeout=10), \
        (team_status(b), api_calls(sandbox))
    assert wait_for(lambda: jobtitle(b, rid) == "Answer Lost", timeout=10), team_status(b)
    with open(b.p("deals", f"{deal}.json")) as f:
        assert json.load(f)["properties"]["dealname"] == "Answer Lost Deal"
    with open(b.p("contacts", f"{contact}.json")) as f:
        assert json.load(f)["properties"]["email"] == "answer.lost@team.test"
    # Each write sent once; published once each (a record, not once per lookup).
    after = calls(sandbox, since=seq)
    for what, path in writes.items():
        assert sum(1 for e in after if re.search(path, e["path"])) == 1, (what, api_calls(sandbox))
    assert team_status(a)["published"] - published == 3, team_status(a)
    assert team_status(b)["received"] - received == 3, team_status(b)
    # B searched nothing: the team told it. The one deal search is A's lookup.
    assert sum(1 for e in after if e["path"].endswith("/contacts/search")) == 0, api_calls(sandbox)
    assert sum(1 for e in after if e["path"].endswith("/deals/search")) == 1, api_calls(sandbox)


@pytest.mark.faults
def test_archive_and_link_whose_answer_was_lost_reach_the_others(sandbox, redis, hubfs, tmp_path):
    """An archive and a link made through A whose answers were lost (HubSpot
    applied them, then the connection dropped): A's lookups find them landed
    and A publishes them as if the answers had come, so B's listing loses the
    record and B's association directory gains the company long before B's
    relist or ttl."""
    sandbox.reset(contacts=40, companies=5, deals=5, tickets=5)
    a = team_mount(hubfs, tmp_path, redis.url, 0, "ttl=120", "writeback_delay_ms=100",
                   "allow_delete", allow=("warning", "answer lost", "in doubt", "in-doubt"))
    b = team_mount(hubfs, tmp_path, redis.url, 1, "ttl=120")
    cs = ids(b, "contacts")
    gone, c = cs[2], cs[1]
    have = set(os.listdir(b.p("contacts", c, "companies")))
    comp = next(f for f in sorted(os.listdir(b.p("companies")))
                if f.endswith(".json") and f not in have)
    with open(b.p("contacts", f"{gone}.json")) as f:
        f.read()
    os.listdir(a.p("contacts"))
    os.listdir(a.p("contacts", c, "companies"))
    writes = {"archive": r"^/crm/v3/objects/contacts/batch/archive$",
              "link": r"^/crm/v4/associations/contacts/companies/batch/associate/default$"}
    for path in writes.values():
        sandbox.fault("drop_after", count=1, path=path)
    published, received = team_status(a)["published"], team_status(b)["received"]
    seq = sandbox.last_seq()

    os.unlink(a.p("contacts", f"{gone}.json"))
    os.symlink(f"../../../companies/{comp}", a.p("contacts", c, "companies", comp))
    sync(a)
    assert sandbox.faults() == [], "a write never reached the dropping server"
    assert a.status()["in_doubt"] == {"answers_lost": 2, "found_landed": 2, "not_landed": 0}, \
        a.status()["in_doubt"]
    assert wait_for(lambda: f"{gone}.json" not in os.listdir(b.p("contacts")), timeout=10), \
        (team_status(b), api_calls(sandbox))
    assert wait_for(lambda: comp in os.listdir(b.p("contacts", c, "companies")), timeout=10), \
        (team_status(b), api_calls(sandbox))
    assert not os.path.exists(b.p("contacts", f"{gone}.json"))
    after = calls(sandbox, since=seq)
    for what, path in writes.items():
        assert sum(1 for e in after if re.search(path, e["path"])) == 1, (what, api_calls(sandbox))
    assert team_status(a)["published"] - published == 2, team_status(a)
    assert team_status(b)["received"] - received == 2, team_status(b)
    assert team_status(b)["applied"]["archive"] == 1 and team_status(b)["applied"]["assoc"] == 1, \
        team_status(b)
    # B neither searched nor relisted: the team told it.
    assert not [e for e in after if re.search(r"^/crm/v3/objects/contacts(/search)?$", e["path"])], \
        api_calls(sandbox)


def test_one_relist_for_the_team_finds_what_was_archived_elsewhere(sandbox, redis, hubfs,
                                                                     tmp_path):
    sandbox.reset(contacts=150, companies=5, deals=5, tickets=5)
    relist = 2
    ms = [team_mount(hubfs, tmp_path, redis.url, i, "ttl=60", f"relist_interval={relist}")
          for i in range(3)]
    ids = sorted(f[:-5] for f in os.listdir(ms[0].p("contacts")) if f.endswith(".json"))
    for m in ms[1:]:
        os.listdir(m.p("contacts"))
    gone = ids[9]
    sandbox.archive("contacts", gone)
    sandbox.clear_log()
    start = time.time()
    while time.time() - start < 3 * relist:
        for m in ms:
            os.listdir(m.p("contacts"))
        time.sleep(0.25)
    elapsed = time.time() - start
    time.sleep(0.5)
    for m in ms:
        assert f"{gone}.json" not in os.listdir(m.p("contacts")), team_status(m)
        assert f"{ids[10]}.json" in os.listdir(m.p("contacts"))
    pages = 2  # 150 contacts: two list pages a relist
    lists = count(sandbox, "GET", r"^/crm/v3/objects/contacts$")
    # Alone, each of the 3 mounts relists every relist_interval.
    assert lists <= pages * (int(elapsed / relist) + 2), (lists, api_calls(sandbox))
    st = [team_status(m) for m in ms]
    assert sum(s["applied"]["relist"] for s in st) >= 2, st
    assert sum(s["applied"]["archive"] for s in st) >= 1, st
    print(f"3 mounts, {elapsed:.1f} s at relist_interval {relist} s: {lists} list calls")


@pytest.mark.faults
def test_redis_killed_and_restarted(sandbox, redis, hubfs, tmp_path):
    sandbox.reset(contacts=80, companies=5, deals=5, tickets=5)
    a = team_mount(hubfs, tmp_path, redis.url, 0, "ttl=2", "op_timeout=5",
                   "writeback_delay_ms=100", allow=("team", "redis", "Redis"))
    b = team_mount(hubfs, tmp_path, redis.url, 1, "ttl=2", "op_timeout=5",
                   allow=("team", "redis", "Redis"))
    ids = sorted(f[:-5] for f in os.listdir(a.p("contacts")) if f.endswith(".json"))
    assert wait_for(lambda: team_status(a).get("mounts") == 2, timeout=10), team_status(a)

    redis.kill()
    # Every syscall keeps answering within op_timeout, and edits land once each.
    for k in range(3):
        t0 = time.time()
        edit(a, ids[k], f"Down {k}")
        os.listdir(b.p("contacts"))
        jobtitle(b, ids[10 + k])
        assert time.time() - t0 < 5 + 2, "a syscall waited past op_timeout with Redis down"
    sync(a)
    assert count(sandbox, "POST", UPDATE) >= 1
    for k in range(3):
        assert sandbox.record("contacts", ids[k])["properties"]["jobtitle"] == f"Down {k}"
    updates = [e for e in calls(sandbox, "POST", UPDATE) if e["status"] == 200]
    assert len(updates) <= 3, api_calls(sandbox)
    st = wait_for(lambda: team_status(a).get("degraded") and team_status(a), timeout=10)
    assert st and st["degraded"] is True, team_status(a)
    r = subprocess.run([HUBFS, "status", a.path], capture_output=True, text=True, timeout=30)
    assert "DEGRADED" in r.stdout, r.stdout
    # a mount made while Redis is down mounts (on its share) and says so
    c = team_mount(hubfs, tmp_path, redis.url, 2, "ttl=2", "op_timeout=5",
                   allow=("team", "redis", "Redis"))
    assert "does not answer yet" in c.stderr()
    assert len(os.listdir(c.p("contacts"))) >= 80
    assert team_status(c)["degraded"] is True

    redis.start()  # empty, on the same socket: the team rejoins
    assert wait_for(lambda: all(team_status(m).get("connected") for m in (a, b, c)),
                    timeout=20), (team_status(a), team_status(b), team_status(c))
    edit(a, ids[4], "Back Up")
    sync(a)
    assert wait_for(lambda: jobtitle(b, ids[4]) == "Back Up", timeout=10), team_status(b)
    r = subprocess.run([HUBFS, "status", a.path], capture_output=True, text=True, timeout=30)
    assert "team: connected" in r.stdout and "mounts seen: 3" in r.stdout, r.stdout


@pytest.mark.faults
def test_dead_lease_holder_is_replaced_within_a_ttl(sandbox, redis, hubfs, tmp_path):
    sandbox.reset(contacts=60, companies=5, deals=5, tickets=5)
    sandbox.configure(index_delay=1)
    ttl = 2
    ms = [team_mount(hubfs, tmp_path, redis.url, i, f"ttl={ttl}", "index_delay=1")
          for i in range(2)]
    rid = sorted(f[:-5] for f in os.listdir(ms[0].p("contacts")) if f.endswith(".json"))[4]
    for m in ms:
        jobtitle(m, rid)

    def holder():
        for le in team_status(ms[0]).get("leases", []):
            if le["name"] == "refresh/0-1":
                return le["holder"]
        return None

    end = time.time() + 4 * ttl
    held = None
    while time.time() < end and not held:
        for m in ms:
            jobtitle(m, rid)
        held = holder()
        time.sleep(0.2)
    assert held, team_status(ms[0])
    dead = next(m for m in ms if team_status(m)["mount_id"] == held)
    alive = next(m for m in ms if m is not dead)
    dead.signal(signal.SIGKILL)  # no lease released, no goodbye
    dead.wait_exit(10)
    subprocess.run(["fusermount3", "-uz", dead.path], capture_output=True)
    dead.unmounted = True

    seq = sandbox.last_seq()
    sandbox.update("contacts", rid, {"jobtitle": "After The Holder Died"})
    killed = time.time()
    # the survivor takes the lease once it runs out (a ttl after the last
    # renewal) and refreshes for itself
    assert wait_for(lambda: jobtitle(alive, rid) == "After The Holder Died", timeout=6 * ttl), \
        team_status(alive)
    print(f"the survivor refreshed {time.time() - killed:.1f} s after the holder died")
    assert any(e["path"].endswith("/contacts/search") for e in calls(sandbox, since=seq))


def test_password_never_in_argv_logs_or_status(sandbox, hubfs, tmp_path):
    sandbox.reset(contacts=20, companies=5, deals=5, tickets=5)
    r = Redis(tmp_path, password=PASSWORD)
    try:
        pw = tmp_path / "redis.pw"
        pw.write_text(PASSWORD + "\n")
        os.chmod(pw, 0o644)
        bad = hubfs(f"redis={r.url}", f"redis_password_file={pw}", foreground=True, wait=False,
                    env={"XDG_STATE_HOME": str(tmp_path / "s0")})
        assert bad.proc.wait(timeout=15) != 0
        bad.unmounted = True
        assert "redis_password_file" in bad.stderr() and "0600" in bad.stderr()

        os.chmod(pw, 0o600)
        m = team_mount(hubfs, tmp_path, r.url, 1, f"redis_password_file={pw}",
                       "log_level=debug")
        os.listdir(m.p("contacts"))
        st = team_status(m)
        assert st["connected"] is True, st
        with open(f"/proc/{m.pid}/cmdline", "rb") as f:
            assert PASSWORD.encode() not in f.read()
        with open(m.p(".hubfs", "status.json")) as f:
            assert PASSWORD not in f.read()
        out = subprocess.run([HUBFS, "status", m.path], capture_output=True, text=True).stdout
        assert "team: connected" in out and PASSWORD not in out
        m.unmount()
        assert PASSWORD not in m.stderr()
        assert stat.S_IMODE(os.stat(pw).st_mode) == 0o600

        # The wrong password: refused at mount, said plainly, and not echoed.
        pw.write_text("not-the-password\n")
        wrong = hubfs(f"redis={r.url}", f"redis_password_file={pw}", foreground=True,
                      wait=False, env={"XDG_STATE_HOME": str(tmp_path / "s2")})
        assert wrong.proc.wait(timeout=15) != 0
        wrong.unmounted = True
        assert "redis" in wrong.stderr().lower() and "not-the-password" not in wrong.stderr()
    finally:
        r.kill()


def test_rediss_and_bad_urls_refused(sandbox, hubfs, tmp_path):
    for url, says in (("rediss://127.0.0.1:6380", "TLS"), ("redis://:pw@127.0.0.1", "password"),
                      ("http://x", "redis")):
        m = hubfs(f"redis={url}", foreground=True, wait=False,
                  env={"XDG_STATE_HOME": str(tmp_path / "s")})
        assert m.proc.wait(timeout=15) != 0
        m.unmounted = True
        assert says in m.stderr(), m.stderr()
    assert len(sandbox.log()) == 0  # refused before any call to HubSpot


def test_webhooks_received_by_one_mount_reach_the_team(sandbox, redis, hubfs, tmp_path):
    """One mount of the team has the webhook receiver (an app has one target
    URL); a change made in HubSpot shows through every mount long before ttl,
    the others reading it back only because they hold the record."""
    from tests.mount.test_webhooks import SECRET, SUBS, secret_file
    sandbox.reset(contacts=40, companies=5, deals=5, tickets=5)
    sandbox.configure(index_delay=30)  # search lags far behind: no refresh can tell them
    sf = secret_file(tmp_path)
    a = team_mount(hubfs, tmp_path, redis.url, 0, "ttl=120", "webhook_listen=127.0.0.1:0",
                   f"webhook_secret_file={sf}")
    b = team_mount(hubfs, tmp_path, redis.url, 1, "ttl=120")
    c = team_mount(hubfs, tmp_path, redis.url, 2, "ttl=120")
    rid = sorted(f[:-5] for f in os.listdir(b.p("contacts")) if f.endswith(".json"))[5]
    for m in (a, b, c):
        assert jobtitle(m, rid) != "Pushed To The Team"
    url = f"http://{a.status()['webhooks']['listen']}/hubspot"
    sandbox.webhooks_subscribe(url, SECRET, SUBS, batch_window_ms=20)
    sandbox.clear_log()
    sandbox.update("contacts", rid, {"jobtitle": "Pushed To The Team"})
    for m in (a, b, c):
        assert wait_for(lambda: jobtitle(m, rid) == "Pushed To The Team", timeout=10), \
            api_calls(sandbox)
    # batch reads only (one per mount holding it, coalesced), never a search
    assert count(sandbox, "POST", SEARCH) == 0, api_calls(sandbox)
    assert 1 <= count(sandbox, "POST", READ) <= 3, api_calls(sandbox)
