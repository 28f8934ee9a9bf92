#!/usr/bin/env python3
"""Write the seed corpus of the hubfs fuzz harnesses (tests/fuzz/corpus/<harness>/).

Seeds are small, readable files in each harness's input format (see the
comment at the top of fuzz_<harness>.c). Run from anywhere; it rewrites the
seed-*.txt files and leaves every other file (reproducers of findings,
inputs merged from fuzzing runs) alone.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, '..', 'unit', 'golden', 'edit')
DEFAULT = {
    'contacts': ['email', 'firstname', 'lastname', 'phone', 'company', 'jobtitle', 'lifecyclestage',
                 'hs_lead_status', 'hubspot_owner_id', 'createdate', 'lastmodifieddate'],
    'deals': ['dealname', 'amount', 'dealstage', 'pipeline', 'closedate', 'hubspot_owner_id',
              'createdate', 'hs_lastmodifieddate'],
    'tickets': ['subject', 'content', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_priority',
                'hubspot_owner_id', 'createdate', 'hs_lastmodifieddate'],
}
SEP = '\n--\n'


def golden(name):
    with open(os.path.join(GOLDEN, name), encoding='utf-8') as f:
        return json.load(f)


def render(tn, api):
    """A record file as record_render writes it (schema shown = default)."""
    defs = {p['name']: p for p in golden(tn + '_props.json')['results']}
    shown = sorted({n for n in DEFAULT[tn] if n in defs} |
                   {n for n, p in defs.items() if p.get('hubspotDefined') is False})
    props = api.get('properties', {})
    out = {'id': api['id'], 'properties': {n: props.get(n) for n in shown},
           'createdAt': api.get('createdAt'), 'updatedAt': api.get('updatedAt'),
           'archived': api.get('archived', False)}
    return json.dumps(out, indent=2, ensure_ascii=False) + '\n'


def props(**kv):
    return json.dumps({'properties': kv}, ensure_ascii=False)


def edit_seeds():
    s = {}
    files = {'c': ('contacts', 'contact_101.json'), 'd': ('deals', 'deal_301.json'),
             't': ('tickets', 'ticket_501.json')}
    for sel, (tn, rec) in files.items():
        api = golden(rec)
        base = render(tn, api)
        s[sel + '-base'] = sel + base
        s[sel + '-api-shape'] = sel + json.dumps(api, indent=2, ensure_ascii=False)
        s[sel + '-hidden-ctx'] = sel.upper() + base
        b = json.loads(base)
        b['properties'][sorted(b['properties'])[0]] = None
        s[sel + '-one-null'] = sel + json.dumps(b, indent=2)
        b = json.loads(base)
        b['id'] = '999'
        s[sel + '-id-changed'] = sel + json.dumps(b, indent=1)
        b = json.loads(base)
        b['color'] = 'x'
        s[sel + '-unknown-key'] = sel + json.dumps(b)
    s['c-applied'] = 'c' + open(os.path.join(GOLDEN, 'contact_101_applied.json'), encoding='utf-8').read()
    c = {
        'string': props(firstname='Mía', lastname='López\n'),
        'number': props(nps_score=9.5),
        'number-str': props(nps_score='-1.5e3'),
        'number-bad': props(nps_score=' 7'),
        'number-big': '{"properties": {"nps_score": 99999999999999999999}}',
        'bool': props(vip=True),
        'bool-str': props(vip='TRUE'),
        'date': props(renewal_date='2024-02-29'),
        'date-epoch': props(renewal_date='1709164800000'),
        'date-bad': props(renewal_date='2023-02-29'),
        'datetime': props(last_call_at='2024-01-17T19:55:04.281Z'),
        'datetime-offset': props(last_call_at='2024-01-17T19:55:04+00:00'),
        'datetime-bad': props(last_call_at='2024-01-17T24:00:00Z'),
        'enum': props(lifecyclestage='customer'),
        'enum-bad': props(lifecyclestage='Customer'),
        'checkbox': props(interests='webinars;events'),
        'checkbox-append': props(interests=';product_updates'),
        'checkbox-empty-part': props(interests='webinars;;events'),
        'owner': props(hubspot_owner_id='31000003'),
        'owner-bad': props(hubspot_owner_id='4'),
        'external': props(account_region='EMEA'),
        'clear-null': props(jobtitle=None, city=''),
        'readonly': props(hs_object_id='102'),
        'calculated': props(num_associated_deals='3'),
        'readonly-same': props(hs_object_id='101', lastmodifieddate='2024-09-11T13:27:39.356Z'),
        'unknown-prop': props(favourite_colour='blue'),
        'array': '{"properties": {"firstname": ["a"]}}',
        'object': '{"properties": {"firstname": {"a": 1}}}',
        'nul-escape': '{"properties": {"firstname": "a\\u0000b"}}',
        'nan': '{"properties": {"nps_score": NaN}}',
        'bom': '\ufeff{"properties": {"firstname": "A"}}',
        'trailing': '{"properties": {}} x',
        'truncated': '{"properties": {"firstname": "A"',
        'not-object': '["properties"]',
        'properties-not-object': '{"properties": "x"}',
        'empty': '',
        'whitespace': ' \n\t ',
        'invalid-utf8': b'{"properties": {"firstname": "\xc3("}}',
        'long-line': props(notes='x' * 300 + 'é' * 10),
        'id-number': '{"id": 101, "properties": {}}',
        'archived-true': '{"archived": true, "properties": {}}',
        'created-null': '{"createdAt": null, "properties": {}}',
        'multiline-id': '{"id": "1\\n2", "properties": {}}',
        'duplicate-prop': '{"properties": {"firstname": "A", "firstname": "B"}}',
        'duplicate-escaped': '{"properties": {"email": "a@b.c", "\\u0065mail": "d@e.f"}}',
        'duplicate-top': '{"properties": {}, "properties": {"firstname": "A"}}',
        'same-key-nested': '{"properties": {"firstname": "{\\"a\\": 1, \\"a\\": 2}"}}',
    }
    for k, v in c.items():
        s['c-' + k] = (b'c' + v) if isinstance(v, bytes) else 'c' + v
    d = {
        'pipeline-and-stage': props(pipeline='7421055', dealstage='7421056'),
        'pipeline-only': props(pipeline='7421055'),
        'stage-only': props(dealstage='closedwon'),
        'stage-other-pipeline': props(dealstage='7421057'),
        'pipeline-clear': props(pipeline=None),
        'stage-clear': props(dealstage=''),
        'pipeline-bad': props(pipeline='nope'),
        'amount': props(amount='12500.50', dealname='Renewal ✓'),
        'dealtype': props(dealtype='newbusiness'),
        'closedate': props(closedate='1735689600000'),
        'readonly-calc': props(hs_is_closed='true'),
    }
    for k, v in d.items():
        s['d-' + k] = 'd' + v
        s['D-' + k] = 'D' + v
    t = {
        'pipeline-and-stage': props(hs_pipeline='612', hs_pipeline_stage='613'),
        'stage': props(hs_pipeline_stage='4'),
        'stage-bad': props(hs_pipeline_stage='613'),
        'priority': props(hs_ticket_priority='HIGH', subject='Login fails'),
        'new': '{"properties": {"subject": "New ticket", "hs_pipeline_stage": "1"}}',
    }
    for k, v in t.items():
        s['t-' + k] = 't' + v
    return s


def query_seeds():
    q = {
        # every operator, on each kind of property
        'd-eq-number': 'damount=5',
        'd-neq': 'damount!=5',
        'd-lt': 'damount<5',
        'd-lte': 'damount<=5.5',
        'd-gt': 'damount>-1.5e3',
        'd-gte': 'damount>=10000&dealstage!=closedwon',
        'd-contains': 'ddealname~acme',
        'd-not-contains': 'ddealname!~acme renewal',
        'd-has': 'dforecast_note?',
        'd-not-has': 'd!forecast_note?',
        'd-eq-empty': 'dforecast_note=',
        'd-neq-empty': 'dforecast_note!=',
        'd-free-text': 'dq=acme',
        'd-design-example': 'damount>=10000&dealstage!=closedwon|q=acme',
        'd-text-in-group': 'damount<5&q=acme|dealtype=newbusiness',
        'd-dates': 'dclosedate>=2024-01-31&createdate<1700000000000',
        'd-datetime-iso': 'dcreatedate=2024-02-01T09:30:00.000Z',
        'd-datetime-offset': 'dcreatedate<=2024-02-01 10:30+01:00',
        'd-op-in-value': 'ddealname>=<=',
        'd-op-in-value2': 'ddealname=a=b',
        'd-contains-op': 'ddealname!~!~',
        'd-glob-star': 'ddealname~acme*',
        'd-glob-class': 'ddealname~[a-c]?me*',
        'd-glob-neg-class': 'ddealname~[!x]cme',
        'd-glob-unclosed': 'ddealname~[acme*',
        'd-percent': 'ddealname=a%26b%7Cc%3Dd%21e%3Cf%3Eg%7Eh%3Fi%25j%2Fk',
        'd-percent-name': 'd%64ealname~x%2fy%3d%3e',
        'd-percent-has': 'd!%64ealname?',
        'd-utf8': 'ddealname=Caf%C3%A9%20M%C3%BCller|dealname=Café',
        'd-q-encoded': 'd%71=a%26b%7Cc',
        'd-padded': 'ddealname= Acme  Corp ',
        'd-free-padded': 'dq= two  words ',
        'd-enum-case': 'ddealstage=ClosedWon',
        'd-five-groups': 'damount=1|amount=2|amount=3|amount=4|amount=5',
        'd-six-groups': 'damount=1|amount=2|amount=3|amount=4|amount=5|amount=6',
        'd-six-in-group': 'damount>1&amount>2&amount>3&amount>4&amount>5&amount>6',
        'd-seven-in-group': 'damount>1&amount>2&amount>3&amount>4&amount>5&amount>6&amount>7',
        'd-eighteen': '|'.join(['&'.join(['amount>%d' % (g * 6 + i) for i in range(6)]) for g in range(3)]),
        'd-nineteen': '|'.join(['&'.join(['amount>%d' % (g * 6 + i) for i in range(6)]) for g in range(3)]) + '|amount=1',
        'd-empty-group': 'da=1||b=2',
        'd-empty-cond': 'damount=1&&amount=2',
        'd-no-op': 'damount',
        'd-no-name': 'd=5',
        'd-bad-percent': 'ddealname=%G1',
        'd-nul-percent': 'ddealname=%00',
        'd-bad-utf8-percent': 'ddealname=%C3',
        'd-unknown-prop': 'dnope=1',
        'd-bad-number': 'damount=five',
        'd-bad-date': 'dclosedate=2024-02-30',
        'd-q-twice': 'dq=a|q=b',
        'd-q-empty': 'dq=%20',
        # contacts: checkbox, bool, strings compared as text
        'c-checkbox': 'cinterests=webinars',
        'c-checkbox-neq': 'cinterests!=events&vip=true',
        'c-string-compare': 'cemail>m&lifecyclestage<lead&vip<=true',
        'c-token-run': 'cnotes~call only',
        'c-email-glob': 'cemail~*@example.com',
        'c-free-text-multi': 'cq=María López',
        'c-unicode-upper': 'cfirstname=MARÍA',
        'c-number-float': 'cnps_score>=7.5',
        'c-renewal': 'crenewal_date<2025-03-02',
        # tickets
        't-tickets': 'tsubject~login&hs_ticket_priority=HIGH|!content?',
        't-stage': 'ths_pipeline_stage=2|q=invoice',
        # with a record of our own after the newline
        'd-record': 'damount>=100&dealname~acme\n{"amount": "150", "dealname": "ACME corp"}',
        'c-record': 'cinterests=events\n{"interests": "webinars;events", "firstname": null}',
        'c-record-nums': 'cnps_score=8\n{"nps_score": 8, "vip": true}',
        't-record': 'tq=vat\n{"subject": "VAT", "content": ["x"]}',
        'd-record-dates': 'dclosedate>2024-01-01\n{"closedate": "1735689600000"}',
    }
    return q


def pages():
    """Answers of the list, batch/read, search, association, owners and pipelines calls."""
    contact = golden('contact_101.json')
    deal = golden('deal_301.json')
    ticket = golden('ticket_501.json')
    list_page = json.dumps({'results': [contact, {'id': '102', 'properties': {'email': 'b@x.io'},
                                                  'createdAt': '2024-01-01T00:00:00Z',
                                                  'updatedAt': '2024-01-02T00:00:00.5Z',
                                                  'archived': False}],
                            'paging': {'next': {'after': 'NTI1Cg%3D%3D', 'link': '?after=NTI1Cg%3D%3D'}}})
    batch = json.dumps({'status': 'COMPLETE', 'results': [deal],
                        'numErrors': 1,
                        'errors': [{'status': 'error', 'category': 'OBJECT_NOT_FOUND',
                                    'message': 'Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.',
                                    'context': {'ids': ['999']}}],
                        'requestedAt': '2024-10-02T16:45:12.004Z', 'startedAt': '2024-10-02T16:45:12.004Z',
                        'completedAt': '2024-10-02T16:45:12.104Z', 'links': {}})
    search = json.dumps({'total': 10432, 'results': [ticket],
                         'paging': {'next': {'after': '100'}}})
    search_nulls = json.dumps({'total': 1, 'results': [{'id': '7', 'properties': {
        'email': None, 'firstname': 'A', 'nps_score': 5, 'interests': ['x'], 'createdate': {'a': 1}},
        'createdAt': 1700000000000, 'updatedAt': '1700000000000', 'archived': None}]})
    assoc = json.dumps({'status': 'COMPLETE', 'results': [
        {'from': {'id': '33451'}, 'to': [{'toObjectId': 9723855655, 'associationTypes': [
            {'category': 'HUBSPOT_DEFINED', 'typeId': 1, 'label': 'Primary'},
            {'category': 'HUBSPOT_DEFINED', 'typeId': 279, 'label': None}]}],
         'paging': {'next': {'after': 'MjA=', 'link': None}}}],
        'startedAt': '2024-01-01T00:00:00Z', 'completedAt': '2024-01-01T00:00:01Z'})
    owners = json.dumps({'results': [{'id': '41629779', 'email': 'o@x.io', 'firstName': 'O',
                                      'lastName': 'W', 'userId': 9586504, 'type': 'PERSON',
                                      'createdAt': '2019-12-06T16:46:23.420Z',
                                      'updatedAt': '2020-01-09T20:28:50.080Z', 'archived': False,
                                      'teams': [{'id': '1', 'name': 'A', 'primary': True}]},
                                     {'id': '31000001', 'userId': None, 'archived': True}],
                         'paging': {'next': {'after': '2'}}})
    pipelines = json.dumps(golden('deals_pipelines.json'), separators=(',', ':'))
    return {'list': list_page, 'batch': batch, 'search': search, 'search-nulls': search_nulls,
            'assoc': assoc, 'owners': owners, 'pipelines': pipelines}


def api_seeds():
    def pick(tn, names):
        res = [p for p in golden(tn + '_props.json')['results'] if p['name'] in names]
        return json.dumps({'results': res}, separators=(',', ':'))

    contacts_props = pick('contacts', ['email', 'firstname', 'lifecyclestage', 'hubspot_owner_id',
                                       'createdate', 'interests', 'nps_score', 'hs_object_id'])
    deals_props = pick('deals', ['dealname', 'amount', 'dealstage', 'pipeline', 'hs_is_closed'])
    pg = pages()
    list_page, batch, search, search_nulls, assoc, owners, pipelines = (
        pg['list'], pg['batch'], pg['search'], pg['search-nulls'], pg['assoc'], pg['owners'],
        pg['pipelines'])
    contact = golden('contact_101.json')
    errors = {
        'validation': {"status": "error", "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"description\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"description\",\"localizedErrorMessage\":\"Property \\\"description\\\" does not exist\",\"portalId\":244764782}]",
                       "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": "VALIDATION_ERROR",
                       "errors": [{"message": "Property \"description\" does not exist", "code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": ["description"]}}]},
        'bad-enum': {"status": "error", "message": "reports was not one of the allowed options: [PRODUCT_ISSUE, BILLING_ISSUE, FEATURE_REQUEST, GENERAL_INQUIRY]", "correlationId": "1", "category": "VALIDATION_ERROR"},
        'bad-json': {"status": "error", "message": "Invalid input JSON on line 1, column 11: Cannot deserialize value of type `java.lang.String` from Object value", "correlationId": "2", "category": "VALIDATION_ERROR"},
        'stage-in-use': {"status": "error", "message": "Stage is in use", "correlationId": "3", "category": "VALIDATION_ERROR", "subCategory": "PipelineError.STAGE_ID_IN_USE", "context": {"stageIds": ["1"], "objectIds": ["2"]}},
        'auth': {"status": "error", "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview", "correlationId": "4", "category": "INVALID_AUTHENTICATION"},
        'expired': {"status": "error", "message": "The OAuth token used to make this call expired 0 second(s) ago.", "correlationId": "5", "category": "EXPIRED_AUTHENTICATION", "context": {"expire time": ["2026-03-10T23:04:41.164Z"]}},
        'scopes': {"status": "error", "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.", "correlationId": "6", "category": "MISSING_SCOPES", "errors": [{"message": "One or more of the following scopes are required.", "context": {"requiredGranularScopes": ["crm.objects.contacts.read"]}}], "links": {"scopes": "https://developers.hubspot.com/scopes"}},
        'not-found': {"status": "error", "message": "Object not found.  objectId are usually numeric.", "correlationId": "7", "category": "OBJECT_NOT_FOUND", "context": {"id": ["abc"]}},
        'conflict': {"status": "error", "message": "Contact already exists. Existing ID: 37765128953", "correlationId": "8", "category": "CONFLICT"},
        'daily': {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "DAILY", "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"},
        'ten-secondly': {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT", "correlationId": "9", "policyName": "TEN_SECONDLY_ROLLING", "groupName": "publicapi:private_app-api-calls-ten-secondly:123:456"},
        'secondly': {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "correlationId": "10"},
        'secondly-legacy': {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "policyName": "SECONDLY", "groupName": "publicapi:hapikey-secondly:62515"},
        'rate-category': {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "category": "RATE_LIMITS", "correlationId": "11"},
        'long-message': {"status": "error", "message": "é" * 300, "correlationId": "x" * 80, "category": "C" * 70},
    }
    sel = {400: 0, 401: 1, 403: 2, 404: 3, 409: 4, 429: 5, 500: 6, 207: 7}
    status = {'validation': 400, 'bad-enum': 400, 'bad-json': 400, 'stage-in-use': 400, 'auth': 401,
              'expired': 401, 'scopes': 403, 'not-found': 404, 'conflict': 409, 'daily': 429,
              'ten-secondly': 429, 'secondly': 429, 'secondly-legacy': 429, 'rate-category': 429,
              'long-message': 500}

    def selector(t, shown, st):
        return bytes([(t & 3) | (shown << 2) | (sel[st] << 4)]).decode('latin-1')

    s = {}
    for k, body in errors.items():
        s['error-' + k] = selector(0, 0, status[k]) + SEP + SEP + json.dumps(body, ensure_ascii=False) + SEP + 'hdr-corr-1'
    s['error-html-404'] = selector(0, 0, 404) + SEP + SEP + '<html><body>Not Found</body></html>'
    s['error-text-502'] = selector(0, 0, 500) + SEP + SEP + 'upstream connect error or disconnect/reset before headers\r\n\tretried'
    s['error-empty'] = selector(0, 0, 500) + SEP + SEP + SEP + 'Wed, 21 Oct 2015 07:28:00 GMT'
    s['error-null'] = selector(0, 0, 400) + SEP + SEP + 'null'
    s['error-array'] = selector(0, 0, 400) + SEP + SEP + '[{"message": "x"}]'
    s['retry-after-secs'] = selector(0, 0, 429) + SEP + SEP + SEP + '120'
    s['list-contacts'] = selector(0, 0, 400) + contacts_props + SEP + list_page
    s['list-contacts-all'] = selector(0, 1, 400) + contacts_props + SEP + list_page
    s['list-contacts-csv'] = selector(0, 3, 400) + contacts_props + SEP + list_page + SEP + SEP + 'email, nps_score,,nope'
    s['batch-deals'] = selector(2, 0, 207) + deals_props + SEP + batch
    s['search-tickets-fixed-schema'] = selector(3, 0, 400) + SEP + search
    s['search-nulls'] = selector(0, 1, 400) + contacts_props + SEP + search_nulls
    s['assoc-batch'] = selector(1, 0, 400) + SEP + assoc
    s['owners'] = selector(0, 0, 400) + SEP + owners + SEP + SEP + '41629779'
    s['pipelines-deals'] = selector(2, 0, 400) + SEP + pipelines + SEP + SEP + '7421056'
    s['pipelines-weird'] = selector(2, 0, 400) + SEP + json.dumps({'results': [
        {'id': 'default', 'archived': True, 'stages': 'x'}, 5, None,
        {'id': 7, 'displayOrder': -9223372036854775808, 'stages': [{'id': 'closedwon', 'archived': True}, {'id': None}]}]}) + SEP + SEP + 'closedwon'
    s['schema-malformed'] = selector(0, 2, 400) + '{"results": {"name": "x"}}' + SEP + json.dumps(contact)
    s['schema-odd-defs'] = selector(0, 1, 400) + json.dumps({'results': [
        {'name': 'a', 'hubspotDefined': False, 'type': 'number'}, {'name': 'a', 'type': 'string'},
        {'name': 5}, 'x', {'name': 'b\u0000c', 'calculated': True}, {'name': ''}]}) + SEP + \
        json.dumps({'id': '1', 'properties': {'a': 1.5, 'b': None, '': 'e'}})
    s['record-bad-ids'] = selector(0, 0, 400) + SEP + json.dumps({'results': [
        {'id': '0'}, {'id': '0123'}, {'id': '281474976710655'}, {'id': '281474976710656'}, {'id': 12},
        {'id': None}, {'id': '-1'}, {'id': '1e3'}, {'properties': {}}]})
    s['json-lenient'] = selector(0, 0, 400) + "{'results': [1,2,],}" + SEP + '[NaN, Infinity, -Infinity, 1.0e+999, 18446744073709551615, -9223372036854775809]'
    s['json-deep'] = selector(0, 0, 400) + '[' * 70 + ']' * 70 + SEP + '{"a":' * 63 + '1' + '}' * 63
    s['json-strings'] = selector(0, 0, 400) + '"\\ud83d\\ude00 \\u0000 \\/ \\b\\f\\n\\r\\t"' + SEP + '  \x0b\x0c  '
    return s


def write(harness, seeds):
    d = os.path.join(HERE, 'corpus', harness)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith('seed-'):
            os.unlink(os.path.join(d, f))
    for name, text in seeds.items():
        with open(os.path.join(d, 'seed-%s.txt' % name), 'wb') as f:
            f.write(text if isinstance(text, bytes) else text.encode('utf-8'))
    print('%s: %d seeds' % (harness, len(seeds)), file=sys.stderr)


def cache_seeds():
    pg = pages()
    order = ['list', 'batch', 'assoc', 'owners', 'pipelines', 'search']
    s = {}
    s['all-six'] = '\x00' + SEP.join(pg[k] for k in order)
    s['deals-all-six'] = '\x02' + SEP.join(pg[k] for k in order)
    for k, v in pg.items():
        s['one-' + k] = '\x00' + v
    s['tickets-search'] = '\x03' + pg['search']
    s['assoc-contacts-deals'] = '\x08' + json.dumps({'results': [
        {'from': {'id': '101'}, 'to': [{'toObjectId': 301, 'associationTypes': []},
                                      {'toObjectId': '302'}, {'toObjectId': 0}, {'toObjectId': 301}],
         'paging': {'next': {'after': 'MjA='}}},
        {'from': {'id': '999'}, 'to': []}]})
    s['empty-results'] = '\x00{"results": []}'
    s['not-json'] = '\x00<html>502 Bad Gateway</html>'
    s['empty-body'] = '\x00'
    s['list-paging'] = '\x01' + json.dumps({'results': [{'id': str(i), 'properties': {}} for i in range(1, 8)],
                                          'paging': {'next': {'after': '7'}}})
    return s


def objtypes_seeds():
    """schemas response, enablement response, -o types= value."""
    cars = {'id': '3465404', 'objectTypeId': '2-3465404', 'fullyQualifiedName': 'p1234_cars',
            'name': 'cars', 'labels': {'singular': 'Car', 'plural': 'Cars'},
            'primaryDisplayProperty': 'model', 'secondaryDisplayProperties': ['make'],
            'requiredProperties': ['year', 'make', 'VIN', 'model'],
            'searchableProperties': ['year', 'make', 'VIN', 'model'],
            'properties': [{'name': 'model', 'label': 'Model', 'type': 'string', 'fieldType': 'text'},
                           {'name': 'year', 'label': 'Year', 'type': 'number', 'fieldType': 'number'},
                           {'name': 'hs_pipeline', 'type': 'enumeration'},
                           {'name': 'hs_pipeline_stage', 'type': 'enumeration'}],
            'associations': [{'id': '75', 'fromObjectTypeId': '2-3465404', 'toObjectTypeId': '0-1',
                              'name': 'cars_to_contact'},
                             {'id': 120, 'fromObjectTypeId': '2-3465404', 'toObjectTypeId': '2-7777'},
                             {'id': '90', 'fromObjectTypeId': '2-3465404', 'toObjectTypeId': '0-7'}],
            'metaType': 'PORTAL_SPECIFIC', 'archived': False}
    clash = {'id': '7777', 'fullyQualifiedName': 'p1234_notes', 'name': 'notes',
             'labels': {'plural': 'Our notes'}, 'requiredProperties': ['title'],
             'properties': [{'name': 'title', 'type': 'string'}],
             'associations': [{'id': '121', 'fromObjectTypeId': '2-7777', 'toObjectTypeId': '2-3465404'}]}
    archived = {'id': '5555', 'name': 'old', 'archived': True}
    enable = json.dumps({'enablementByObjectTypeId': {'0-420': False, '0-421': True, '0-162': True,
                                                      '0-410': False}})
    two = json.dumps({'results': [cars, clash, archived]})
    many = json.dumps({'results': [{'id': str(1000 + i), 'name': 'c%d' % i, 'requiredProperties': [],
                                    'properties': [], 'associations': []} for i in range(40)]})
    s = {}
    s['two-customs'] = two + SEP + enable + SEP
    s['two-customs-core'] = two + SEP + enable + SEP + 'core, notes,p1234_cars,nope'
    s['no-enablement'] = two
    s['standard-only'] = '{"results": []}' + SEP + enable + SEP + 'all'
    s['types-ids'] = '' + SEP + '' + SEP + '0-1,0-46,line_item,COMMERCE_PAYMENT,listings'
    s['cap'] = many + SEP + enable
    s['cap-types'] = many + SEP + enable + SEP + 'core,c0,c39'
    s['no-id'] = json.dumps({'results': [{'name': 'x', 'id': 9}]})
    s['bad-name'] = json.dumps({'results': [{'name': '../x', 'id': '1'}]})
    s['bad-assoc'] = json.dumps({'results': [{'name': 'x', 'id': '1', 'associations': [{'id': 'x'}]}]})
    s['dup-id'] = json.dumps({'results': [{'name': 'a', 'id': '1'}, {'name': 'b', 'objectTypeId': '2-1'}]})
    s['not-object'] = '[1, 2]' + SEP + '[]'
    return s


def webhook_seeds():
    """Deliveries as HubSpot sends them, with secret, method, URL, timestamp and
    a signature (right for v3, v1, or neither); see fuzz_webhook.c."""
    import base64
    import hashlib
    import hmac
    import re

    def decode(uri):
        table = dict(zip(['3A', '2F', '3F', '40', '21', '24', '27', '28', '29', '2A', '2C', '3B'],
                         ":/?@!$'()*,;"))
        return re.sub('%([0-9A-Fa-f]{2})', lambda m: table.get(m.group(1).upper(), m.group(0)), uri)

    def v3(secret, method, uri, body, ts):
        msg = (method + decode(uri)).encode() + body.encode() + ts.encode()
        return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()

    def seed(sel, body, secret='yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy', method='POST',
             uri='https://example.com/hubspot', ts='1564113600000', sig=None):
        if sig is None:
            sig = v3(secret, method, uri, body, ts)
        return chr(sel) + SEP.join([body, secret, method, uri, ts, sig])

    ev = dict(eventId=1, subscriptionId=12345, portalId=62515, occurredAt=1564113600000,
              subscriptionType='contact.creation', attemptNumber=0, objectId=123,
              changeSource='CRM', changeFlag='NEW', appId=54321)
    doc = json.dumps([ev], separators=(',', ':'))
    kinds = [
        dict(ev, subscriptionType='deal.propertyChange', objectId=301, propertyName='amount',
             propertyValue='1200', sourceId='userId:42'),
        dict(ev, subscriptionType='company.deletion', objectId='201'),
        dict(ev, subscriptionType='ticket.restore', objectId=501),
        dict(ev, subscriptionType='contact.privacyDeletion', objectId=101),
        dict(ev, subscriptionType='line_item.creation', objectId=9001),
        dict(ev, subscriptionType='object.propertyChange', objectTypeId='2-3456789', objectId=77,
             propertyName='plan'),
        dict(ev, subscriptionType='contact.merge', primaryObjectId=101, mergedObjectIds=[102, '103', -4],
             newObjectId=105, numberOfPropertiesMoved=4),
        dict(ev, subscriptionType='contact.associationChange', associationType='CONTACT_TO_COMPANY',
             fromObjectId=101, toObjectId=201, associationRemoved=True, isPrimaryAssociation=False),
        dict(ev, subscriptionType='company.associationChange', associationType='COMPANY_TO_CONTACT',
             fromObjectId='201', toObjectId='101', associationRemoved=False, isPrimaryAssociation=True,
             associationCategory='HUBSPOT_DEFINED', associationTypeId=280),
        dict(ev, subscriptionType='conversation.newMessage'),
        {'eventType': 'product.deletion', 'objectId': 5},
    ]
    s = {}
    s['doc-v3'] = seed(0, doc)
    s['doc-v1'] = seed(1, doc, sig='232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de')
    s['kinds'] = seed(2, json.dumps(kinds))
    s['each-kind'] = seed(3, json.dumps(kinds, indent=1))
    s['stale'] = seed(0x80, doc)
    s['ahead'] = seed(0xc0, doc)
    s['edge-5min'] = seed(0x40, doc)
    s['uri-escapes'] = seed(5, doc, uri="https://hooks.example.com/hub%3Aspot/x%2fy?portal=62515&q=%40a%2C%20b%253A%21%24%27%28%29%2a%3B")
    s['secret-odd'] = seed(6, '[]', secret='s3cr3t+/=&webhook', uri='http://127.0.0.1:8787/hubspot?%%3A',
                           ts='1700000000123')
    s['bad-sig'] = seed(7, doc, sig='vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA=')
    s['bad-ts'] = seed(8, doc, ts='-1564113600000')
    s['empty-secret'] = seed(9, doc, secret='')
    s['not-json'] = seed(10, '<html>hello</html>')
    s['object'] = seed(11, json.dumps(ev))
    s['not-objects'] = seed(12, '[{}, 1, "x", null]')
    s['deep'] = seed(13, '[' * 20 + ']' * 20)
    s['many'] = seed(14, '[' + ','.join(['{}'] * 1001) + ']')
    s['ids'] = seed(15, json.dumps([{'objectId': v} for v in
                                    [0, -1, 1.5, '+6', ' 7', '08', 18446744073709551615, 18446744073709551616,
                                     '18446744073709551616', True, None, [], {}]]))
    s['strings'] = seed(16, json.dumps([{'subscriptionType': 'contact.' + 'x' * 200, 'propertyName': 'p' * 300},
                                        {'subscriptionType': 'x' * 70 + '.creation'},
                                        {'subscriptionType': '.creation', 'propertyName': 'a\u0000b'}]))
    s['nul-body'] = seed(17, '[{}]\u0000')
    return s
def team_seeds():
    """Messages of the team change feed (client/team_msg.h), good and bad."""
    def msg(changes, origin='host-a:4242:9f1c', v=1):
        return json.dumps({'v': v, 'origin': origin, 'changes': changes})
    upd = {'kind': 'update', 'type': 'contacts', 'id': '101', 'updated': 1700000000000}
    return {
        'update': msg([upd]),
        'all-kinds': msg([
            upd,
            {'kind': 'create', 'type': 'deals', 'id': '5', 'updated': 0},
            {'kind': 'archive', 'type': 'tickets', 'id': '18446744073709551615'},
            {'kind': 'assoc', 'type': 'contacts', 'id': '1', 'to_type': 'companies', 'to_id': '2',
             'removed': True},
            {'kind': 'refresh', 'type': '2-1234', 'updated': 1700000000000},
            {'kind': 'relist', 'type': 'p123_cars'},
        ]),
        'skipped': msg([
            {'kind': 'resync', 'type': 'contacts'},
            {'kind': 'update', 'type': 'con tacts', 'id': '1'},
            {'kind': 'update', 'type': 'contacts', 'id': '012'},
            {'kind': 'update', 'type': 'contacts', 'id': '18446744073709551616'},
            {'kind': 'update', 'type': 'contacts', 'id': 7},
            {'kind': 'update', 'type': 'contacts', 'id': '7', 'updated': -1},
            {'kind': 'assoc', 'type': 'contacts', 'id': '1', 'to_type': 'companies'},
            'not an object', upd]),
        'version-2': msg([upd], v=2),
        'no-origin': json.dumps({'v': 1, 'changes': [upd]}),
        'bad-origin': msg([upd], origin='has space'),
        'many': msg([dict(upd, id=str(i)) for i in range(1, 520)]),
        'not-json': 'PUBLISH hubfs:{1:00}:changes hello',
    }
def changes_seeds():
    """Event sequences for fuzz_changes (a header byte, 5 bytes per event; see
    fuzz_changes.c): every kind and type, reordering around drains, merges,
    associations named each way, and the bounds' edge cases."""
    KINDS = dict(creation=0, deletion=1, prop=2, assoc=3, merge=4, restore=5, privacy=6, other=7)
    TYPES = dict(contact=0, company=1, deal=2, line_item=3, car=4, product=5, spaceship=6, widget=7)
    DRAIN, COPY, RETRY = 1, 2, 3

    def ev(kind, typ, oid, t, op=0, eid=0, misc=0, b3=0, b4=0):
        return bytes([KINDS[kind] | TYPES[typ] << 3 | op << 6, oid | eid << 3, t | misc << 5, b3, b4])

    def assoc(typ, oid, to_typ, to_id, t, how=0, op=0, eid=0):
        return ev('assoc', typ, oid, t, op=op, eid=eid, b3=to_id | how << 3 | TYPES[to_typ] << 5)

    def merge(typ, oid, t, new=0, primary=0, merged=(), op=0):
        m = list(merged) + [0, 0, 0]
        return ev('merge', typ, oid, t, op=op, b3=new | primary << 3,
                  b4=m[0] | m[1] << 3 | (m[2] & 3) << 6)

    def seq(header, *events):
        return bytes([header]) + b''.join(events)

    s = {}
    s['each-kind'] = seq(0, *[ev(k, t, 1 + i % 7, 1 + i % 29, eid=i % 32)
                              for i, (k, t) in enumerate((k, t) for k in KINDS for t in TYPES)])
    s['reorder'] = seq(0, ev('deletion', 'contact', 1, 5), ev('restore', 'contact', 1, 6),
                       ev('restore', 'contact', 2, 6), ev('deletion', 'contact', 2, 5),
                       ev('deletion', 'contact', 1, 5, op=DRAIN, eid=1),
                       ev('restore', 'contact', 3, 7), ev('deletion', 'contact', 3, 7, op=DRAIN),
                       ev('prop', 'contact', 3, 6, op=DRAIN), ev('deletion', 'contact', 4, 9),
                       ev('prop', 'contact', 4, 8, op=DRAIN), ev('prop', 'contact', 4, 10, op=DRAIN))
    s['duplicates'] = seq(0, ev('creation', 'deal', 1, 3), ev('prop', 'deal', 1, 4),
                          ev('creation', 'deal', 1, 3, op=COPY, eid=0),
                          ev('deletion', 'deal', 2, 3, op=DRAIN), ev('deletion', 'deal', 2, 3, op=COPY, eid=3),
                          ev('prop', 'deal', 1, 4, misc=6), ev('prop', 'deal', 1, 4, eid=9))
    s['merge'] = seq(0, merge('contact', 1, 5, new=5, primary=1, merged=(2, 3, 5)),
                     merge('company', 2, 6, new=2, primary=2, merged=(1,)),
                     merge('deal', 3, 7, primary=3, merged=(4, 1)), merge('deal', 0, 7, merged=(4,)),
                     ev('prop', 'contact', 2, 4, op=DRAIN), ev('restore', 'contact', 2, 8),
                     merge('car', 6, 9, primary=6, merged=(7,), op=DRAIN))
    s['assoc'] = seq(0, assoc('contact', 1, 'company', 2, 5), assoc('company', 2, 'contact', 1, 5),
                     assoc('line_item', 3, 'deal', 4, 5), assoc('car', 5, 'contact', 6, 5),
                     assoc('contact', 6, 'car', 5, 5, how=1), assoc('contact', 7, 'company', 1, 5, how=2),
                     assoc('contact', 1, 'company', 2, 5, how=3), assoc('product', 1, 'deal', 2, 5),
                     assoc('contact', 1, 'spaceship', 2, 5, how=1), assoc('contact', 0, 'company', 2, 5),
                     assoc('contact', 1, 'company', 0, 5), ev('deletion', 'contact', 1, 6, op=DRAIN),
                     assoc('contact', 1, 'company', 2, 7))
    s['ignored'] = seq(16, ev('other', 'contact', 1, 5), ev('creation', 'spaceship', 1, 5),
                       ev('creation', 'widget', 1, 5), ev('creation', 'contact', 0, 5),
                       ev('creation', 'contact', 1, 0), ev('creation', 'contact', 1, 31),
                       ev('creation', 'contact', 1, 5, misc=7), ev('creation', 'contact', 2, 5))
    # news of a remembered record dropped at the pending bound: a later,
    # older deletion must not win
    s['overflow-history'] = seq(1, ev('creation', 'contact', 1, 5),
                                ev('creation', 'contact', 2, 5, op=DRAIN), ev('creation', 'contact', 3, 5),
                                ev('creation', 'contact', 4, 5), ev('prop', 'contact', 1, 7),
                                ev('deletion', 'contact', 1, 6, op=DRAIN))
    # the same for a record not remembered: the watermark
    s['overflow-fresh'] = seq(1, ev('creation', 'contact', 2, 5), ev('creation', 'contact', 3, 5),
                              ev('creation', 'contact', 4, 5), ev('prop', 'contact', 1, 7),
                              ev('deletion', 'contact', 1, 6, op=DRAIN),
                              ev('deletion', 'company', 1, 3), ev('creation', 'company', 2, 3),
                              ev('creation', 'company', 3, 3), ev('restore', 'company', 4, 4),
                              ev('deletion', 'company', 4, 3, op=DRAIN))
    s['history-evict'] = seq(4, *[ev('restore', 'contact', i, 4 + i) for i in range(1, 7)],
                             ev('deletion', 'contact', 1, 4, op=DRAIN), ev('deletion', 'contact', 2, 5),
                             ev('deletion', 'contact', 6, 11), ev('deletion', 'contact', 5, 8))
    s['assoc-bound'] = seq(2, *[assoc('contact', i, 'company', i, 5) for i in range(1, 6)],
                           assoc('deal', 1, 'company', 2, 5, op=DRAIN))
    s['dedupe-bound'] = seq(8, *[ev('prop', 'contact', 1, 5 + i, eid=i) for i in range(4)],
                            *[ev('prop', 'contact', 1, 5 + i, eid=i) for i in range(4)])
    s['retry'] = seq(0, ev('prop', 'contact', 1, 5), assoc('contact', 2, 'company', 3, 5),
                     ev('deletion', 'contact', 1, 6, op=DRAIN), ev('prop', 'contact', 4, 6, op=RETRY),
                     ev('deletion', 'contact', 1, 7, op=DRAIN), ev('prop', 'deal', 1, 7, op=RETRY))
    s['retry-bounded'] = seq(15, *[ev('prop', 'contact', i, 5) for i in range(1, 4)],
                             ev('prop', 'deal', 1, 5, op=DRAIN), ev('prop', 'deal', 2, 5),
                             ev('prop', 'deal', 3, 5), ev('prop', 'deal', 4, 5, op=RETRY))
    # creations and restores are read even when the cache's copy looks new
    s['held'] = seq(0, ev('creation', 'contact', 1, 5), ev('restore', 'contact', 2, 5),
                    ev('prop', 'contact', 3, 5), ev('prop', 'contact', 4, 30),
                    ev('prop', 'deal', 5, 4), ev('creation', 'deal', 5, 3))
    return s


def config_seeds():
    s = {}
    s['all-keys'] = ('# every key\n[hubfs]\napi_url = https://api.hubapi.com\ntoken_file = /home/u/.tok\n'
                     'ca_file = /etc/ssl/certs/ca.pem\nrate_limit = 100/10s\nlog_level = info\n'
                     'props_contacts = email,firstname\nprops_companies = all\nprops_deals = default\n'
                     'props_tickets = subject, content\nttl = 60\nop_timeout = 30\nindex_delay = 10\n'
                     'relist_interval = 900\nsearch_per_sec = 5\ncache_mb = 512\n'
                     'writeback_delay_ms = 2000\ndrain_timeout = 30\nallow_delete = false\nro = no\n'
                     'umask = 077\nportal = 12345678\n')
    s['oauth'] = ('[oauth]\nclient_id = 1234-abcd\nclient_secret = 5f3c-secret\n'
                  'refresh_token = na1-rt-0000\n[hubfs]\nttl = 30\n')
    s['oauth-in-hubfs'] = '[hubfs]\nclient_id = x\nclient_secret = y/+=\nrefresh_token = z\n'
    s['comma-injection'] = '[hubfs]\nttl = 60,allow_other\n'
    s['backslash'] = '[hubfs]\nttl = 60\\,allow_other\napi_url = a\\sb\n'
    s['unknown-key'] = '[hubfs]\nallow_other = true\n'
    s['unknown-group'] = '[fuse]\ndebug = true\n'
    s['twice'] = '[hubfs]\nttl = 1\nttl = 2\n[hubfs]\nttl = 3\n'
    s['locale'] = '[hubfs]\nttl[fr] = 5\nttl = 6\n'
    s['token'] = '[hubfs]\ntoken = pat-na1-0000\n'
    s['empty-values'] = '[hubfs]\nttl =\napi_url=   \n'
    s['no-group'] = 'ttl = 5\n'
    s['comments-blank'] = '\n\n# c\n[hubfs]\n# ttl = 1\n\n'
    s['list-syntax'] = '[hubfs]\nprops_contacts = a;b;c\nprops_deals = a\\;b\n'
    s['profiles'] = ('[hubfs]\nttl = 30\n[oauth]\nclient_id = x\nclient_secret = y\n'
                     '[profile p]\nttl = 45\nportal = 1\nrefresh_token = z\n'
                     '[profile other]\napi_url = http://127.0.0.1:1\nclient_secret = w\n')
    s['profile-bad-name'] = '[profile a/b]\nttl = 1\n[profile]\n[profile p]\nttl = 2,ro\n'
    return s


if __name__ == '__main__':
    write('edit', edit_seeds())
    write('query', query_seeds())
    write('api', api_seeds())
    write('cache', cache_seeds())
    write('objtypes', objtypes_seeds())
    write('webhook', webhook_seeds())
    write('team', team_seeds())
    write('config', config_seeds())
    write('changes', changes_seeds())
