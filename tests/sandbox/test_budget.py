"""Search in the rolling window or not (issue 14): HubSpot documents search as
a separate budget (5/s, no rate-limit headers); `search_in_window` makes each
search also take a slot of the 10-second window.  Both modes are tested."""

import pytest

from tests.sandbox.client import start_sandbox

SEARCH = '/crm/v3/objects/contacts/search'


def rl_headers(r):
    return [h for h in r.headers if h.lower().startswith('x-hubspot-ratelimit')]


def test_separate_budget_is_the_default(sandbox):
    assert sandbox.config()['search_in_window'] is False
    sandbox.configure(rate_limit='4/10s', search_limit=0)
    for _ in range(3):
        assert sandbox.api('GET', '/crm/v3/owners').status == 200
    for _ in range(5):
        r = sandbox.api('POST', SEARCH, {'limit': 1})
        assert r.status == 200 and not rl_headers(r)
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == 200 and r.header('X-HubSpot-RateLimit-Remaining') == '0'
    assert sandbox.api('GET', '/crm/v3/owners').status == 429
    # a full window does not stop search
    assert sandbox.api('POST', SEARCH, {'limit': 1}).status == 200


def test_search_counted_in_the_window(sandbox):
    sandbox.configure(rate_limit='4/10s', search_limit=0, search_in_window=True)
    assert sandbox.api('GET', '/crm/v3/owners').header('X-HubSpot-RateLimit-Remaining') == '3'
    r = sandbox.api('POST', SEARCH, {'limit': 1})
    assert r.status == 200 and not rl_headers(r)        # still no headers on search
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.header('X-HubSpot-RateLimit-Remaining') == '1'   # the search took a slot
    assert sandbox.api('POST', SEARCH, {'limit': 1}).status == 200
    r = sandbox.api('POST', SEARCH, {'limit': 1})
    assert r.status == 429
    b = r.json()
    assert b['policyName'] == 'TEN_SECONDLY_ROLLING' and b['errorType'] == 'RATE_LIMIT'
    assert not rl_headers(r)
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == 429 and r.header('X-HubSpot-RateLimit-Remaining') == '0'
    # refused requests do not count; every accepted one counts in the daily total
    assert sandbox.config()['daily_used'] == 4
    assert sandbox.count(endpoint='POST ' + SEARCH, status=429) == 1


def test_secondly_limit_still_applies_when_counted(sandbox):
    sandbox.configure(rate_limit='100/10s', search_limit=2, search_in_window=True)
    res = [sandbox.api('POST', SEARCH, {'limit': 1}) for _ in range(3)]
    assert [r.status for r in res] == [200, 200, 429]
    assert res[2].json()['policyName'] == 'SECONDLY'
    # the refused search took no slot of the window
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.header('X-HubSpot-RateLimit-Remaining') == '97'


def test_switch_through_control_api_and_reset(sandbox):
    assert sandbox.configure(search_in_window=True)['search_in_window'] is True
    sandbox.reset()
    assert sandbox.config()['search_in_window'] is False
    with pytest.raises(Exception):
        sandbox.configure(search_in_window='yes')


def test_search_in_window_flag():
    sb = start_sandbox(contacts=5, companies=0, deals=0, tickets=0, rate_limit='2/10s',
                       search_limit=0, search_in_window=True)
    try:
        assert sb.config()['search_in_window'] is True
        assert sb.api('POST', SEARCH, {}).status == 200
        assert sb.api('POST', SEARCH, {}).status == 200
        assert sb.api('GET', '/crm/v3/owners').status == 429
        sb.reset()
        assert sb.config()['search_in_window'] is True      # the startup setting
    finally:
        sb.stop()
