"""The sandbox sends webhooks (issue 15): subscriptions through the control
API, signed batches (v1 and v3) for every change made through the API or by
another client, HubSpot's retries, faults, the delivery log."""

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest

from tests.sandbox.client import SandboxError, WebhookReceiver
from tests.sandbox.webhooks import signature_v1, signature_v3, v3_uri

SECRET = 'wh-secret-0f1e2d3c'
FAST = {'retry_delays_ms': [50, 50, 50], 'batch_window_ms': 20}


@pytest.fixture
def rx(sandbox):
    r = WebhookReceiver()
    try:
        yield r
    finally:
        sandbox.webhooks_clear()
        r.stop()


def sub(sb, rx, events, **kw):
    settings = dict(FAST)
    settings.update(kw)
    return sb.webhooks_subscribe(rx.url, SECRET, events, **settings)


def by_type(events):
    out = {}
    for e in events:
        out.setdefault(e['subscriptionType'], []).append(e)
    return out


def v3_ok(req, secret=SECRET, url=None):
    h = req['headers']
    msg = b'POST' + v3_uri(url).encode() + req['body'] + h['X-HubSpot-Request-Timestamp'].encode()
    want = base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(want, h['X-HubSpot-Signature-v3'])


def v1_ok(req, secret=SECRET):
    return hashlib.sha256(secret.encode() + req['body']).hexdigest() == \
        req['headers']['X-HubSpot-Signature']


# ---------------------------------------------------------------- signatures


def test_v1_signature_matches_hubspots_test_vector():
    body = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
            b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
            b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]')
    assert signature_v1('yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy', body) == \
        '232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de'


def test_v3_signature_and_uri_decoding():
    assert v3_uri('https://h.example/hook%3Fa%3Db?x=%2Fy%40z%20w') == \
        'https://h.example/hook?a%3Db?x=/y@z%20w'     # %3D is not on the list
    sig = signature_v3('s', 'POST', 'https://h/p', b'[]', 1700000000000)
    want = base64.b64encode(hmac.new(b's', b'POSThttps://h/p[]1700000000000',
                                     hashlib.sha256).digest()).decode()
    assert sig == want


# ---------------------------------------------------------------- events


def test_creation_and_property_changes_signed(sandbox, rx):
    sub(sandbox, rx, ['contact.creation', 'contact.propertyChange'])
    t0 = int(time.time() * 1000)
    r = sandbox.api('POST', '/crm/v3/objects/contacts', {'properties': {
        'email': 'wh@example.com', 'firstname': 'Web'}})
    cid = int(r.json()['id'])
    assert sandbox.webhooks_wait()['idle']
    reqs = rx.wait(1)
    req = reqs[0]
    h = req['headers']
    assert h['Content-Type'] == 'application/json'
    assert h['X-HubSpot-Signature-Version'] == 'v1' and v1_ok(req)
    assert v3_ok(req, url=rx.url)
    assert abs(int(h['X-HubSpot-Request-Timestamp']) - time.time() * 1000) < 60000
    ev = rx.events()
    assert isinstance(req['json'], list)
    kinds = by_type(ev)
    (c,) = kinds['contact.creation']
    assert c['objectId'] == cid and c['changeFlag'] == 'NEW' and c['changeSource'] == 'API'
    assert c['portalId'] == 12345678 and c['attemptNumber'] == 0 and c['occurredAt'] >= t0
    assert {e['propertyName']: e['propertyValue'] for e in kinds['contact.propertyChange']} == {
        'email': 'wh@example.com', 'firstname': 'Web'}
    assert len({e['eventId'] for e in ev}) == len(ev)
    # an update: one event per changed property, nothing for an unchanged PATCH
    n = len(rx.requests)
    sandbox.api('PATCH', '/crm/v3/objects/contacts/%d' % cid,
                {'properties': {'firstname': 'Webb', 'jobtitle': 'CTO', 'email': 'wh@example.com'}})
    sandbox.api('PATCH', '/crm/v3/objects/contacts/%d' % cid, {'properties': {'jobtitle': 'CTO'}})
    sandbox.webhooks_wait()
    new = [e for r in rx.requests[n:] for e in r['json']]
    assert sorted((e['propertyName'], e['propertyValue']) for e in new) == [
        ('firstname', 'Webb'), ('jobtitle', 'CTO')]
    assert all(e['subscriptionType'] == 'contact.propertyChange' for e in new)
    assert not [e for e in rx.events() if e.get('propertyName') == 'lastmodifieddate']


def test_deletion_restore_merge_and_other_client(sandbox, rx):
    sub(sandbox, rx, ['contact.deletion', 'contact.restore', 'contact.merge'])
    sandbox.api('DELETE', '/crm/v3/objects/contacts/1000007')
    sandbox.restore('contacts', '1000007')
    sandbox.merge('contacts', '1000008', '1000009')
    sandbox.webhooks_wait()
    ev = by_type(rx.events())
    (d,) = ev['contact.deletion']
    assert d['objectId'] == 1000007 and d['changeSource'] == 'API' and d['changeFlag'] == 'DELETED'
    (r,) = ev['contact.restore']
    assert r['objectId'] == 1000007 and r['changeSource'] == 'CRM'
    (m,) = ev['contact.merge']
    assert m['primaryObjectId'] == 1000008 and m['mergedObjectIds'] == [1000009]
    assert m['newObjectId'] == 1000008 and m['numberOfPropertiesMoved'] >= 0
    assert m['changeSource'] == 'CRM'


def test_association_change_once_per_side(sandbox, rx):
    sub(sandbox, rx, ['contact.associationChange', 'company.associationChange'])
    sandbox.api('PUT', '/crm/v4/objects/contacts/1000002/associations/default/companies/2000009')
    sandbox.webhooks_wait()
    ev = by_type(rx.events())
    (a,) = ev['contact.associationChange']
    assert a['associationType'] == 'CONTACT_TO_COMPANY' and a['fromObjectId'] == 1000002
    assert a['toObjectId'] == 2000009 and a['associationRemoved'] is False
    assert a['isPrimaryAssociation'] is False and a['associationTypeId'] == 279
    (b,) = ev['company.associationChange']
    assert b['associationType'] == 'COMPANY_TO_CONTACT' and b['fromObjectId'] == 2000009
    assert b['associationTypeId'] == 280
    # a primary association: primary and unlabeled, each side; removal too
    n = len(rx.events())
    sandbox.api('PUT', '/crm/v4/objects/contacts/1000003/associations/companies/2000010',
                [{'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 1}])
    sandbox.api('DELETE', '/crm/v4/objects/contacts/1000003/associations/companies/2000010')
    sandbox.webhooks_wait()
    new = [e for e in rx.events()[n:] if e['fromObjectId'] in (1000003, 2000010) and
           2000010 in (e['fromObjectId'], e['toObjectId'])]
    added = sorted((e['associationTypeId'], e['isPrimaryAssociation']) for e in new
                   if not e['associationRemoved'])
    removed = sorted(e['associationTypeId'] for e in new if e['associationRemoved'])
    assert added == [(1, True), (2, True), (279, False), (280, False)]
    assert removed == [1, 2, 279, 280]


def test_object_events_for_other_and_custom_types(sandbox, rx):
    sub(sandbox, rx, ['object.creation', 'object.propertyChange',
                      {'eventType': 'object.deletion', 'objectTypeId': '2-4810001'}])
    n = sandbox.api('POST', '/crm/v3/objects/notes', {'properties': {
        'hs_timestamp': '2024-01-01T00:00:00Z', 'hs_note_body': '<p>x</p>'}}).json()
    car = sandbox.create('cars', {'vin': 'V9', 'make': 'Kia', 'model': 'EV6', 'year': '2023'})
    sandbox.api('DELETE', '/crm/v3/objects/notes/' + n['id'])
    sandbox.archive('cars', car['id'])
    sandbox.api('POST', '/crm/v3/objects/contacts', {'properties': {'email': 'no@x.io'}})
    sandbox.webhooks_wait()
    ev = by_type(rx.events())
    created = {(e['objectTypeId'], e['objectId']) for e in ev['object.creation']}
    assert created == {('0-46', int(n['id'])), ('2-4810001', int(car['id']))}
    assert [(e['objectTypeId'], e['objectId']) for e in ev['object.deletion']] == [
        ('2-4810001', int(car['id']))]
    assert {e['propertyName'] for e in ev['object.propertyChange']
            if e['objectTypeId'] == '2-4810001'} == {'vin', 'make', 'model', 'year'}
    assert 'contact.creation' not in ev


def test_property_filter_wildcard_and_inactive(sandbox, rx):
    tg = sub(sandbox, rx, [{'eventType': 'deal.propertyChange', 'propertyName': 'amount'},
                           {'eventType': 'ticket.creation', 'active': False}])
    sandbox.api('PATCH', '/crm/v3/objects/deals/3000001', {'properties': {
        'amount': '999', 'dealname': 'Renamed'}})
    sandbox.api('POST', '/crm/v3/objects/tickets', {'properties': {
        'subject': 'x', 'hs_pipeline_stage': '1'}})
    sandbox.webhooks_wait()
    ev = rx.events()
    assert [(e['subscriptionType'], e['propertyName'], e['propertyValue']) for e in ev] == [
        ('deal.propertyChange', 'amount', '999')]
    assert ev[0]['subscriptionId'] == tg['subscriptions'][0]['id']
    sandbox.webhook_update(tg['id'], subscriptions=['*'])
    sandbox.update('tickets', '5000001', {'subject': 'New subject'})
    sandbox.webhooks_wait()
    assert ('ticket.propertyChange', 'subject') in [
        (e['subscriptionType'], e.get('propertyName')) for e in rx.events()]


def test_batches_stay_under_one_hundred_events(sandbox, rx):
    sub(sandbox, rx, ['contact.propertyChange'], batch_window_ms=500)
    out = sandbox.bulk('contacts', update={'count': 250})
    sandbox.webhooks_wait()
    sizes = [len(r['json']) for r in rx.requests]
    assert sum(sizes) == 250 and max(sizes) <= 99 and len(sizes) >= 3
    ev = rx.events()
    assert sorted(e['objectId'] for e in ev) == sorted(int(i) for i in out['updated'])
    assert all(e['changeSource'] == 'CRM' for e in ev)
    assert len({e['eventId'] for e in ev}) == 250


# ---------------------------------------------------------------- delivery


def test_retries_with_the_configured_schedule(sandbox, rx):
    rx.respond(500, 429, 200)
    tg = sub(sandbox, rx, ['company.creation'])
    sandbox.api('POST', '/crm/v3/objects/companies', {'properties': {'name': 'Retry Co'}})
    assert sandbox.webhooks_wait(include_retries=True)['idle']
    reqs = rx.wait(3)
    assert [r['status'] for r in reqs] == [500, 429, 200]
    assert [r['json'][0]['attemptNumber'] for r in reqs] == [0, 1, 2]
    assert len({r['json'][0]['eventId'] for r in reqs}) == 1
    assert len({r['headers']['X-HubSpot-Signature'] for r in reqs}) == 3   # re-signed
    assert all(v1_ok(r) and v3_ok(r, url=rx.url) for r in reqs)
    log = sandbox.webhook_deliveries(target=tg['id'])
    assert [(d['attempt'], d['status'], d['final']) for d in log] == [
        (0, 500, False), (1, 429, False), (2, 200, True)]
    assert log[0]['retry_in_ms'] == 50 and log[0]['events'][0]['attemptNumber'] == 0
    assert SECRET not in json.dumps(log)
    stats = sandbox.webhooks()['targets'][0]['stats']
    assert stats['delivered'] == 1 and stats['failed_attempts'] == 2


def test_timeout_counts_as_failure_and_gives_up(sandbox, rx):
    rx.respond(503, 503, 503, 503)
    tg = sub(sandbox, rx, ['deal.creation'], retry_delays_ms=[10], max_retries=2)
    sandbox.api('POST', '/crm/v3/objects/deals', {'properties': {
        'dealname': 'x', 'dealstage': 'appointmentscheduled'}})
    sandbox.webhooks_wait(include_retries=True)
    log = sandbox.webhook_deliveries()
    assert [(d['attempt'], d['status']) for d in log] == [(0, 503), (1, 503), (2, 503)]
    assert log[-1]['final'] is True and log[-1]['retry_in_ms'] is None
    assert sandbox.webhooks()['targets'][0]['stats']['given_up'] == 1
    # no answer within timeout_s: a failure like any other
    sandbox.webhook_update(tg['id'], timeout_s=0.2, max_retries=1)
    rx.delay = 1.0
    seq = log[-1]['seq']
    sandbox.api('POST', '/crm/v3/objects/deals', {'properties': {
        'dealname': 'y', 'dealstage': 'appointmentscheduled'}})
    sandbox.webhooks_wait(timeout=15, include_retries=True)
    log = sandbox.webhook_deliveries(since=seq)
    assert [d['status'] for d in log] == [0, 0]
    assert 'timed out' in log[0]['error'] or 'timeout' in log[0]['error'].lower()


def test_unreachable_target_is_retried(sandbox):
    rx = WebhookReceiver()
    url = rx.url
    rx.stop()                                   # nothing listens there now
    sandbox.webhooks_subscribe(url, SECRET, ['contact.creation'], retry_delays_ms=[20],
                               max_retries=1)
    sandbox.create('contacts', {'email': 'down@x.io'})
    sandbox.webhooks_wait(include_retries=True)
    log = sandbox.webhook_deliveries()
    assert [d['status'] for d in log] == [0, 0] and log[0]['error']
    sandbox.webhooks_clear()


def test_delivery_never_blocks_the_api(sandbox, rx):
    rx.hold = threading.Event()
    sub(sandbox, rx, ['contact.creation'])
    sandbox.create('contacts', {'email': 'first@x.io'})
    sandbox.webhooks_flush()
    deadline = time.monotonic() + 10
    while sandbox.webhooks()['targets'][0]['inflight'] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # while the receiver holds the first delivery, the API keeps answering
    for i in range(5):
        r = sandbox.api('POST', '/crm/v3/objects/contacts', {'properties': {
            'email': 'more%d@x.io' % i}})
        assert r.status == 201
    assert rx.requests == [] and sandbox.webhooks()['targets'][0]['inflight'] >= 1
    rx.hold.set()
    sandbox.webhooks_wait()
    assert len(rx.events()) == 6


def test_throttling_one_at_a_time(sandbox, rx):
    rx.delay = 0.05
    sub(sandbox, rx, ['contact.propertyChange'], max_concurrent=1, max_batch=10)
    sandbox.bulk('contacts', update={'count': 60})
    sandbox.webhooks_wait(timeout=20)
    assert len(rx.events()) == 60 and rx.max_active == 1 and len(rx.requests) >= 6


# ---------------------------------------------------------------- faults


def test_fault_bad_signature(sandbox, rx):
    rx.respond(401)
    sub(sandbox, rx, ['contact.creation'])
    sandbox.webhook_fault('bad_signature')
    sandbox.create('contacts', {'email': 'sig@x.io'})
    sandbox.webhooks_wait(include_retries=True)
    bad, good = rx.wait(2)[:2]
    assert not v1_ok(bad) and not v3_ok(bad, url=rx.url)
    assert v1_ok(good) and v3_ok(good, url=rx.url)        # the retry is signed again
    assert sandbox.webhook_deliveries()[0]['faults'] == ['bad_signature']


def test_fault_stale_timestamp(sandbox, rx):
    sub(sandbox, rx, ['contact.creation'])
    sandbox.webhook_fault('stale_timestamp', stale_ms=10 * 60 * 1000)
    sandbox.create('contacts', {'email': 'old@x.io'})
    sandbox.webhooks_wait()
    (req,) = rx.wait(1)
    ts = int(req['headers']['X-HubSpot-Request-Timestamp'])
    assert time.time() * 1000 - ts > 5 * 60 * 1000
    assert v3_ok(req, url=rx.url)                # valid signature, too old


def test_fault_tampered_body(sandbox, rx):
    sub(sandbox, rx, ['contact.creation'])
    sandbox.webhook_fault('tampered_body')
    sandbox.create('contacts', {'email': 'tamper@x.io'})
    sandbox.webhooks_wait()
    (req,) = rx.wait(1)
    assert req['json'][0]['subscriptionType'] == 'contact.creation'     # still JSON
    assert not v1_ok(req) and not v3_ok(req, url=rx.url)


def test_fault_duplicate(sandbox, rx):
    sub(sandbox, rx, ['contact.creation'])
    sandbox.webhook_fault('duplicate')
    sandbox.create('contacts', {'email': 'twice@x.io'})
    sandbox.webhooks_wait()
    a, b = rx.wait(2)
    assert a['json'] == b['json'] and v1_ok(b) and v3_ok(b, url=rx.url)
    assert [d['duplicate'] for d in sandbox.webhook_deliveries()] == [False, True]


def test_fault_out_of_order(sandbox, rx):
    # a long batching window: the batches are cut by the explicit flushes
    sub(sandbox, rx, ['contact.propertyChange'], batch_window_ms=60000, max_concurrent=1)
    sandbox.webhook_fault('out_of_order', hold_ms=1500)
    sandbox.update('contacts', '1000001', {'jobtitle': 'First', 'city': 'Oslo'})
    sandbox.webhooks_flush()
    sandbox.update('contacts', '1000001', {'jobtitle': 'Second'})
    sandbox.webhooks_wait(timeout=15)
    reqs = rx.wait(2)
    assert [e['propertyValue'] for e in reqs[0]['json']] == ['Second']
    held = reqs[1]['json']
    assert [e['propertyName'] for e in held] == ['city', 'jobtitle']     # reversed inside
    assert reqs[1]['json'][0]['occurredAt'] <= reqs[0]['json'][0]['occurredAt']


# ---------------------------------------------------------------- control API


def test_subscription_validation_reset_and_secret_redaction(sandbox, rx):
    for bad in ({'target_url': 'ftp://x', 'client_secret': 's', 'subscriptions': ['*']},
                {'target_url': rx.url, 'subscriptions': ['*']},
                {'target_url': rx.url, 'client_secret': 's', 'subscriptions': ['contact.eaten']},
                {'target_url': rx.url, 'client_secret': 's', 'subscriptions': ['robot.creation']},
                {'target_url': rx.url, 'client_secret': 's', 'subscriptions': ['*'],
                 'max_batch': 100},
                {'target_url': rx.url, 'client_secret': 's', 'subscriptions': ['*'],
                 'colour': 'red'}):
        with pytest.raises(SandboxError) as e:
            sandbox._ctl('POST', 'webhooks', bad)
        assert e.value.status == 400
    tg = sub(sandbox, rx, ['*'])
    listing = sandbox.webhooks()
    assert SECRET not in json.dumps(listing)
    assert listing['targets'][0]['client_secret_set'] is True
    assert listing['targets'][0]['retry_delays_ms'] == [50, 50, 50]
    with pytest.raises(SandboxError):
        sandbox.webhook_fault('explode')
    sandbox.reset()
    assert sandbox.webhooks()['targets'] == []
    sandbox.create('contacts', {'email': 'after-reset@x.io'})
    time.sleep(0.2)
    assert rx.requests == []
    assert tg['id'] == 1


def test_default_retry_schedule_spans_a_day(sandbox, rx):
    tg = sandbox.webhooks_subscribe(rx.url, SECRET, ['contact.creation'])
    assert tg['max_retries'] == 10 and tg['timeout_s'] == 5.0 and tg['max_batch'] == 99
    total = sum(tg['retry_delays_ms']) / 3600000.0
    assert 20 < total < 25
