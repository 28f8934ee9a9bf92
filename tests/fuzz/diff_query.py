#!/usr/bin/env python3
"""Differential check of query_match against the sandbox's search (the reference).

cache/model/query.c says local matching mirrors tests/sandbox/search.py so an
overlaid record agrees with search once indexed. This replays what fuzz_query
dumped (HUBFS_FUZZ_QUERY_DUMP: the request, the records and query_match's
answers, one JSON line per query) through search.compile_filter and the free-text
rule of search.execute, with the harness's schema (the golden properties), and
prints every record on which the two disagree.

    HUBFS_FUZZ_QUERY_DUMP=/tmp/q.jsonl build-fuzz/tests/fuzz/fuzz_query -runs=0 tests/fuzz/corpus/query
    tests/fuzz/diff_query.py /tmp/q.jsonl

Records with non-string values are skipped (json-c and Python write numbers
differently), as are records with "" values (hubfs treats "" as unset, the
sandbox never stores it). Exit 1 if anything disagrees.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, ROOT)

from tests.sandbox import schema as S  # noqa: E402
from tests.sandbox import search  # noqa: E402

_EPOCH = re.compile(r'^-?[0-9]{1,15}\Z')


def golden_props(t):
    with open(os.path.join(ROOT, 'tests', 'unit', 'golden', 'edit', t + '_props.json')) as f:
        return {p['name']: p for p in json.load(f)['results']}


def stored_time(v, _iso=search._stored_time):
    """The sandbox's stored-date key, plus what query.h adds on purpose: epoch ms
    (a local write not yet normalised by a server)."""
    r = _iso(v)
    if r is None and _EPOCH.match(v):
        r = int(v)
    return r


def main(path):
    for t in ('contacts', 'deals', 'tickets'):
        S.PROPERTIES[t] = golden_props(t)
    search._stored_time = stored_time
    bad = n = skipped = 0
    seen = set()
    with open(path, encoding='utf-8', errors='surrogateescape') as f:
        for line in f:
            d = json.loads(line)
            t = d['type']
            try:
                req = search.parse_request(t, d['request'], search.Caps())
            except Exception as e:  # noqa: BLE001 - any refusal is a disagreement
                print('sandbox refuses a request hubfs sent: %s\n  %s' % (e, json.dumps(d['request'])))
                bad += 1
                continue
            qterms = [q for q in (req['query'] or '').lower().split() if q]
            for rec, got in zip(d['records'], d['matches']):
                if any(v is not None and not isinstance(v, str) for v in rec.values()) or \
                        any(v == '' for v in rec.values()):
                    skipped += 1
                    continue
                n += 1

                def get(name, rec=rec):
                    v = rec.get(name)
                    return v if isinstance(v, str) and v != '' else None
                want = True
                if req['groups']:
                    want = any(all(p(get) for p in g) for g in req['groups'])
                if want and qterms:
                    hay = [(get(p) or '').lower() for p in S.QUERY_PROPS[t]]
                    want = all(any(q in h for h in hay) for q in qterms)
                if want != got:
                    key = (json.dumps(d['request']['filterGroups'], sort_keys=True),
                           d['request'].get('query'), json.dumps(rec, sort_keys=True))
                    if key in seen:
                        continue
                    seen.add(key)
                    bad += 1
                    print('%s: hubfs %s, sandbox %s\n  filterGroups %s\n  query %r\n  record %s'
                          % (t, got, want, json.dumps(d['request']['filterGroups'], ensure_ascii=False),
                             d['request'].get('query'),
                             json.dumps(rec, ensure_ascii=False)))
    print('%d record matches compared, %d skipped, %d disagreements' % (n, skipped, bad),
          file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
