"""Every object type of the account: discovery at mount (custom object schemas,
object-library enablement), -o types=, a type the token may not read, and the
read path of the types beyond the four (listing cost, grep, a custom object's
edit round trip, incremental refresh on each type's own last-modified
property) — on a real mount against a sandbox seeded with --demo, API calls
counted from its request log."""
import json
import math
import os
import time

import pytest

from tests.mount.util import api_calls, count, sync
from tests.sandbox.client import start_sandbox

# What `ls MNT` shows on the demo account: every standard type the objects
# API serves (object-library types enabled), the custom object `cars`, and the
# custom object named `contracts`, which gets its fullyQualifiedName because
# `contracts` is a standard type's name.
STANDARD = ["appointments", "calls", "carts", "commerce_payments", "communications", "companies",
            "contacts", "courses", "deals", "discounts", "emails", "feedback_submissions", "fees",
            "goal_targets", "invoices", "leads", "line_items", "listings", "meetings", "notes",
            "orders", "postal_mail", "products", "projects", "quote_templates", "quotes",
            "services", "subscriptions", "tasks", "taxes", "tickets", "users"]
CUSTOM = {"cars": "p12345678_cars", "p12345678_contracts": "p12345678_contracts"}
FIXED = [".hubfs", "owners", "pipelines", "schema", "search"]
CORE = ["companies", "contacts", "deals", "tickets"]
SEARCH_RE = r"^/crm/v3/objects/[^/]+/search$"
LIST_RE = r"^/crm/v3/objects/[^/]+$"


@pytest.fixture(scope="module")
def demo_server():
    sb = start_sandbox(demo=True, rate_limit="off", index_delay=1, search_limit=0)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sandbox(demo_server):
    """This module's sandbox: the demo account, reset before each test (the
    hubfs fixture mounts whatever `sandbox` is)."""
    demo_server.reset()
    yield demo_server


def errors(m):
    with open(m.p(".hubfs", "errors.log")) as f:
        return [json.loads(line) for line in f if line.strip()]


def records(m, t):
    return sorted(n for n in os.listdir(m.p(t)) if n.endswith(".json"))


def test_ls_root_lists_every_type_at_three_calls(sandbox, hubfs):
    m = hubfs()
    out = m.run(["ls", "-la"]).stdout
    names = sorted(os.listdir(m.path))
    assert names == sorted(FIXED + STANDARD + list(CUSTOM)), names
    assert all(n in out for n in names)
    # the mount's own calls and ls -la's: account-info, schemas, enablement
    log = sandbox.log()
    assert [e["path"] for e in log] == ["/account-info/v3/details",
                                        "/crm-object-schemas/v3/schemas",
                                        "/crm/v3/object-library/enablement"], api_calls(sandbox)
    assert "cars" in os.listdir(m.p("search")) and "feedback_submissions" in os.listdir(m.p("search"))
    assert len(sandbox.log()) == 3, api_calls(sandbox)
    # schema/<type>.json for every type (their sizes cost each type's schema call)
    assert sorted(os.listdir(m.p("schema"))) == sorted([f"{t}.json" for t in STANDARD + list(CUSTOM)]
                                                       + ["labels"])


def test_every_type_lists_at_one_call_per_100(sandbox, hubfs):
    m = hubfs()
    seeded = sandbox.health()["all_records"]
    for t in STANDARD + list(CUSTOM):
        sandbox.clear_log()
        out = m.run(["ls", "-l", t]).stdout
        n = sum(1 for line in out.splitlines() if line.endswith(".json"))
        assert n == seeded[CUSTOM.get(t, t)], (t, n)
        assert n > 0, t  # the demo seeds every type
        # list pages up from the bottom and (past one page) search pages of 200
        # down from the top meet in the middle: never more than ceil(N/100)
        pages = count(sandbox, "GET", LIST_RE) + count(sandbox, "POST", SEARCH_RE)
        assert 1 <= pages <= math.ceil(n / 100), (t, api_calls(sandbox))
        # and the type's schema
        assert len(sandbox.log()) <= pages + 1, (t, api_calls(sandbox))
    # reading every record of a type after ls costs nothing more
    sandbox.clear_log()
    m.run("cat notes/*.json cars/*.json services/*.json > /dev/null")
    assert sandbox.log() == [], api_calls(sandbox)


def test_grep_finds_the_notes_that_mention_a_competitor(sandbox, hubfs):
    m = hubfs(foreground=True)
    r = m.run(["grep", "-ril", "competitor", "notes"])
    found = sorted(os.path.basename(p)[:-5] for p in r.stdout.split())
    truth = []
    after = None
    while True:
        q = {"limit": "100", "properties": "hs_note_body"}
        if after:
            q["after"] = after
        page = sandbox.api("GET", "/crm/v3/objects/notes", query=q).json()
        truth += [n["id"] for n in page["results"]
                  if "competitor" in (n["properties"].get("hs_note_body") or "").lower()]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert truth and found == sorted(truth)
    # the same as a query directory: one search
    q = os.listdir(m.p("search", "notes", "hs_note_body~competitor"))
    assert sorted(n[:-5] for n in q) == sorted(truth)


def test_custom_object_edit_round_trips(sandbox, hubfs):
    m = hubfs()
    rid = records(m, "cars")[0][:-5]
    path = m.p("cars", f"{rid}.json")
    with open(path) as f:
        before = json.load(f)
    # custom objects show every property of their schema by default
    props = sandbox.api("GET", "/crm/v3/properties/p12345678_cars").json()["results"]
    own = {p["name"] for p in props if not p["name"].startswith("hs_")}
    assert {"make", "model", "vin", "year", "color"} <= own <= set(before["properties"])
    assert set(before["properties"]) <= {p["name"] for p in props}
    old = before["properties"]["color"]
    new = "silver" if old != "silver" else "black"
    m.run(["sed", "-i", f's/"color": "{old}"/"color": "{new}"/', f"cars/{rid}.json"])
    sync(m)
    assert sandbox.record("cars", rid)["properties"]["color"] == new
    with open(path) as f:
        after = json.load(f)
    assert after["properties"]["color"] == new
    assert {k: v for k, v in after["properties"].items() if k not in ("color", "hs_lastmodifieddate")} == \
        {k: v for k, v in before["properties"].items() if k not in ("color", "hs_lastmodifieddate")}


def test_types_core_shows_the_four_without_discovery(sandbox, hubfs):
    m = hubfs("types=core", foreground=True)
    assert sorted(os.listdir(m.path)) == sorted(FIXED + CORE)
    assert not os.path.exists(m.p("notes"))
    # nothing but account-info: naming standard types needs no discovery call
    assert [e["path"] for e in sandbox.log()] == ["/account-info/v3/details"], api_calls(sandbox)
    assert sorted(os.listdir(m.p("pipelines"))) == ["deals.json", "tickets.json"]
    m.unmount()
    # standard types by name: still no discovery call; an object-library type
    # needs the enablement call only
    for opt, calls, dirs in (("types=core+notes+line_item", [], CORE + ["line_items", "notes"]),
                             ("types=notes+services", ["/crm/v3/object-library/enablement"],
                              ["notes", "services"])):
        sandbox.clear_log()
        m = hubfs(opt)
        assert [e["path"] for e in sandbox.log()] == ["/account-info/v3/details"] + calls, opt
        assert sorted(os.listdir(m.path)) == sorted(FIXED + dirs)
        m.unmount()


def test_types_list_by_name_and_id(sandbox, hubfs):
    m = hubfs("types=core+notes+0-162+cars+nosuchtype", allow=("no type called nosuchtype",))
    assert sorted(os.listdir(m.path)) == sorted(FIXED + CORE + ["notes", "services", "cars"])
    assert any("nosuchtype" in e["reason"] for e in errors(m))
    assert "nosuchtype" in m.stderr()


def test_types_and_props_from_the_config_file(sandbox, hubfs, tmp_path):
    d = tmp_path / "config" / "hubfs"
    d.mkdir(parents=True)
    (d / "config").write_text("[hubfs]\ntypes = core, calls, notes\n"
                              "props_calls = hs_call_title, hs_call_direction\n"
                              "props_notes = hs_timestamp\n")
    os.chmod(d / "config", 0o600)
    m = hubfs("props_notes=hs_note_body")  # -o wins over the config
    assert sorted(os.listdir(m.path)) == sorted(FIXED + CORE + ["calls", "notes"])
    with open(m.p("calls", records(m, "calls")[0])) as f:
        assert list(json.load(f)["properties"]) == ["hs_call_direction", "hs_call_title"]
    with open(m.p("notes", records(m, "notes")[0])) as f:
        assert list(json.load(f)["properties"]) == ["hs_note_body"]


def test_withheld_scope_answers_eacces_once(sandbox, hubfs):
    sandbox.configure(scopes="-sales-email-read")
    m = hubfs(allow=("emails: HubSpot refuses this token the type",))
    assert "emails" in os.listdir(m.path)
    sandbox.clear_log()
    for _ in range(3):
        with pytest.raises(PermissionError):
            os.listdir(m.p("emails"))
    with pytest.raises(PermissionError):
        open(m.p("emails", "49000001.json")).read()
    with pytest.raises(PermissionError):
        open(m.p("schema", "emails.json")).read()
    assert len(sandbox.log()) == 1, api_calls(sandbox)
    assert sandbox.log()[0]["status"] == 403
    lines = [e for e in errors(m) if e.get("file") == "emails"]
    assert len(lines) == 1 and "sales-email-read" in lines[0]["reason"], errors(m)
    st = m.status()
    assert st["types_denied"] == {"emails": "sales-email-read"}
    assert st["types"]["emails"]["denied"] == "sales-email-read"
    # the other types are untouched
    assert len(records(m, "notes")) == sandbox.health()["all_records"]["notes"]
    # and a record's links to the refused type are refused without a call
    contact = records(m, "contacts")[0][:-5]
    sandbox.clear_log()
    with pytest.raises(PermissionError):
        os.listdir(m.p("contacts", contact, "emails"))
    assert sandbox.log() == [], api_calls(sandbox)


def test_schemas_refused_shows_the_standard_types(sandbox, hubfs):
    sandbox.configure(scopes="-crm.schemas.custom.read,-crm.objects.custom.read")
    m = hubfs(allow=("custom objects not shown",))
    assert sorted(os.listdir(m.path)) == sorted(FIXED + STANDARD)
    assert "custom objects not shown" in m.stderr()
    assert any("crm.schemas.custom.read" in e["reason"] for e in errors(m)), errors(m)


def test_schemas_unreachable_refuses_the_mount(sandbox, hubfs):
    # 503 on every try until op_timeout: not a refusal, so not "no custom objects"
    sandbox.fault("503", seconds=30, path="/schemas$")
    m = hubfs("op_timeout=2", wait=False)
    assert m.proc.wait(timeout=30) != 0
    m.unmounted = True
    assert "cannot discover the account's object types (custom objects)" in m.stderr()
    assert "refusing to mount" in m.stderr()
    assert not os.path.ismount(m.path)


def test_schemas_not_understood_leaves_custom_objects_out(sandbox, hubfs):
    sandbox.fault("status", status=200, count=1, path="/schemas$",
                  body='{"results": [{"name": "9lives", "id": "x"}]}',
                  content_type="application/json")
    m = hubfs(allow=("custom objects not shown",))
    assert sorted(os.listdir(m.path)) == sorted(FIXED + STANDARD)
    assert any("not understood" in e["reason"] for e in errors(m)), errors(m)


def test_refresh_uses_each_types_last_modified(sandbox, hubfs):
    m = hubfs("ttl=2", "index_delay=1")
    note = records(m, "notes")[3][:-5]
    car = records(m, "cars")[2][:-5]
    sandbox.clear_log()
    sandbox.update("notes", note, {"hs_note_body": "<p>Changed elsewhere</p>"})
    sandbox.update("cars", car, {"color": "green"})
    time.sleep(2.5)  # past ttl and the sandbox's indexing delay

    def current():
        try:
            with open(m.p("notes", f"{note}.json")) as f:
                n = json.load(f)["properties"]["hs_note_body"]
            with open(m.p("cars", f"{car}.json")) as f:
                c = json.load(f)["properties"]["color"]
        except ValueError:
            # read while the refresh replaced it: the kernel's size of the
            # old text is dropped a moment after the new text is served
            return False
        return n == "<p>Changed elsewhere</p>" and c == "green"

    end = time.time() + 10
    while not current() and time.time() < end:
        time.sleep(0.2)
    assert current(), api_calls(sandbox)
    # one incremental search per type found them; nothing was listed again
    assert count(sandbox, "POST", r"^/crm/v3/objects/(notes|0-46)/search$") >= 1, api_calls(sandbox)
    assert count(sandbox, "POST", r"^/crm/v3/objects/[^/]+/search$", status=400) == 0
    assert count(sandbox, "GET", LIST_RE) == 0, api_calls(sandbox)
    assert count(sandbox, "POST", r"/batch/read$") == 0, api_calls(sandbox)
