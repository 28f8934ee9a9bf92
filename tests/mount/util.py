"""Helpers for mount tests: API call counts from the sandbox's request log,
and starting a mount in a given mode."""
import json
import os
import re
import subprocess
import time
import urllib.request


from tests.mount.conftest import HUBFS

DEFAULTS = {
    "contacts": ["email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage",
                 "hs_lead_status", "hubspot_owner_id", "createdate", "lastmodifieddate"],
    "companies": ["name", "domain", "industry", "city", "country", "phone", "numberofemployees",
                  "annualrevenue", "lifecyclestage", "hubspot_owner_id", "createdate",
                  "hs_lastmodifieddate"],
    "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
              "createdate", "hs_lastmodifieddate"],
    "tickets": ["subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
                "hubspot_owner_id", "createdate", "hs_lastmodifieddate"],
}


def calls(sandbox, method=None, path_re=None, status=None, since=None):
    """API requests in the sandbox log matching method / path regex / status."""
    rx = re.compile(path_re) if path_re else None
    out = []
    for e in sandbox.log(since=since) if since is not None else sandbox.log():
        if method and e["method"] != method:
            continue
        if rx and not rx.search(e["path"]):
            continue
        if status is not None and e["status"] != status:
            continue
        out.append(e)
    return out


def count(sandbox, method=None, path_re=None, status=None):
    return len(calls(sandbox, method, path_re, status))


def api_calls(sandbox):
    """A readable summary for assertion messages."""
    lines = {}
    for e in sandbox.log():
        k = f"{e['method']} {e['path']} -> {e['status']}"
        lines[k] = lines.get(k, 0) + 1
    return "\n".join(f"{n:5d} {k}" for k, n in sorted(lines.items()))


def api_get(sandbox, path):
    """GET an API path as a plain client would (counts in the log)."""
    req = urllib.request.Request(sandbox.url + path,
                                 headers={"Authorization": f"Bearer {sandbox.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def shown_props(sandbox, t):
    """The properties hubfs shows by default: the curated list plus custom ones."""
    defs = api_get(sandbox, f"/crm/v3/properties/{t}")["results"]
    names = {d["name"] for d in defs}
    shown = {p for p in DEFAULTS[t] if p in names}
    shown |= {d["name"] for d in defs if not d.get("hubspotDefined", True)}
    return sorted(shown)


def start_mount(hubfs, mode, *opts, **kw):
    """Start a mount through the hubfs fixture factory in mode "foreground"
    (-f) or "daemon" (the default `hubfs MNT`, which forks)."""
    return hubfs(*opts, foreground=(mode == "foreground"), **kw)


def wait_for(fn, timeout=10, step=0.1):
    """fn()'s first true value within timeout seconds (polled every step),
    else its value at the end."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def sync(m, ok=True, timeout=300):
    """`hubfs sync` on mount m (every queued write settled); asserts it exits 0
    unless ok=False. Returns the CompletedProcess."""
    r = subprocess.run([HUBFS, "sync", m.path], capture_output=True, text=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr + m.stderr()[-3000:]
    return r


def ids(m, *parts):
    """The record ids in a directory of mount m, sorted as strings."""
    return sorted(n[:-5] for n in os.listdir(m.p(*parts)) if n.endswith(".json"))


def first_contact(m):
    return ids(m, "contacts")[0]


def close_errno(path, data, mode="w"):
    """Write data to path and close it: 0, or the errno write() or close()
    failed with (a save is validated at close)."""
    f = open(path, mode)
    try:
        f.write(data)
    except OSError as e:
        f.close()
        return e.errno
    try:
        f.close()
    except OSError as e:
        return e.errno
    return 0
