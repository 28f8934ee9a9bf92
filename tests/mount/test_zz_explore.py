import os, json, subprocess
from tests.mount.conftest import HUBFS
def test_explore(sandbox, hubfs):
    sandbox.reset(contacts=5, companies=2, deals=2, tickets=2, objects={'cars': 2})
    m = hubfs("writeback_delay_ms=200")
    print(sorted(os.listdir(m.p("cars"))))
    f = sorted(os.listdir(m.p("cars")))[0]
    print(open(m.p("cars", f)).read())
    print(open(m.p("schema", "cars.json")).read()[:300])
    cid = sorted(os.listdir(m.p("contacts")))[0][:-5]
    try:
        with open(m.p("cars", "_new", "x.json"), "w") as fh:
            json.dump({"properties": {"model": "T"}, "associations": {"contacts": [cid]}}, fh)
    except OSError as e:
        print("ERR", e)
    print(open(m.p(".hubfs", "errors.log")).read())
    with open(m.p("cars", "_new", "y.json"), "w") as fh:
        json.dump({"properties": {"model": "T", "make": "Ford", "year": "1920", "vin": "V1"}, "associations": {"contacts": [cid]}}, fh)
    r = subprocess.run([HUBFS, "sync", m.path], capture_output=True, text=True)
    print(r.stdout, r.stderr)
    print(os.listdir(m.p("cars", "_new")))
    print(open(m.p(".hubfs", "errors.log")).read())
