"""Authentication (§1.4, §8) and rate limits (§7)."""

import time
import urllib.parse

import pytest

AUTH_MSG = ('Authentication credentials not found. This API supports OAuth 2.0 '
            'authentication and you can find more details at '
            'https://developers.hubspot.com/docs/methods/auth/oauth-overview')

RL = ('X-HubSpot-RateLimit-Max', 'X-HubSpot-RateLimit-Remaining',
      'X-HubSpot-RateLimit-Interval-Milliseconds', 'X-HubSpot-RateLimit-Daily',
      'X-HubSpot-RateLimit-Daily-Remaining')


def form(d):
    return urllib.parse.urlencode(d)


def refresh(sb, **over):
    d = {'grant_type': 'refresh_token', 'client_id': 'sandbox-client-id',
         'client_secret': 'sandbox-client-secret',
         'refresh_token': 'sandbox-refresh-token'}
    d.update(over)
    return sb.api('POST', '/oauth/v1/token', form(d), token=None,
                  headers={'Content-Type': 'application/x-www-form-urlencoded'})


@pytest.mark.parametrize('path', ['/crm/v3/objects/contacts', '/crm/v3/properties/deals',
                                  '/crm/v3/owners', '/account-info/v3/details',
                                  '/crm/v3/pipelines/deals'])
@pytest.mark.parametrize('token', [None, 'wrong-token'])
def test_missing_or_wrong_token_is_401(sandbox, path, token):
    r = sandbox.api('GET', path, token=token)
    assert r.status == 401
    b = r.json()
    assert b['status'] == 'error' and b['category'] == 'INVALID_AUTHENTICATION'
    assert b['message'] == AUTH_MSG and b['correlationId']


def test_401_on_writes_too(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/contacts/search', {}, token=None)
    assert r.status == 401
    r = sandbox.api('POST', '/crm/v3/objects/contacts',
                    {'properties': {'email': 'x@example.com'}}, token='nope')
    assert r.status == 401
    assert sandbox.api('GET', '/crm/v3/objects/contacts/x@example.com', token=True,
                       query={'idProperty': 'email'}).status == 404


def test_oauth_refresh_issues_working_tokens(sandbox):
    r = refresh(sandbox)
    assert r.status == 200
    b = r.json()
    assert b['token_type'] == 'bearer' and b['expires_in'] == 1800
    assert b['refresh_token'] == 'sandbox-refresh-token'
    assert len(b['access_token']) >= 512
    r = sandbox.api('GET', '/crm/v3/objects/contacts', token=b['access_token'])
    assert r.status == 200
    # the static token keeps working
    assert sandbox.api('GET', '/crm/v3/objects/contacts').status == 200
    r = sandbox.api('GET', '/oauth/v1/access-tokens/' + b['access_token'], token=None)
    assert r.status == 200 and r.json()['hub_id'] == 12345678


@pytest.mark.parametrize('over,status', [
    ({'refresh_token': 'bad'}, 'BAD_REFRESH_TOKEN'),
    ({'client_id': 'bad'}, 'BAD_CLIENT_ID'),
    ({'client_secret': 'bad'}, 'BAD_CLIENT_SECRET'),
    ({'grant_type': 'password'}, 'BAD_GRANT_TYPE'),
])
def test_oauth_errors(sandbox, over, status):
    r = refresh(sandbox, **over)
    assert r.status == 400 and r.json()['status'] == status


def test_oauth_authorization_code(sandbox):
    r = sandbox.api('POST', '/oauth/v1/token', form({
        'grant_type': 'authorization_code', 'client_id': 'sandbox-client-id',
        'client_secret': 'sandbox-client-secret', 'code': 'sandbox-auth-code',
        'redirect_uri': 'http://localhost/cb'}), token=None)
    assert r.status == 200 and r.json()['access_token']


def test_expired_access_token(sandbox):
    sandbox.configure(token_expiry=1)
    tok = refresh(sandbox).json()
    assert tok['expires_in'] == 1
    assert sandbox.api('GET', '/crm/v3/objects/contacts',
                       token=tok['access_token']).status == 200
    time.sleep(1.1)
    r = sandbox.api('GET', '/crm/v3/objects/contacts', token=tok['access_token'])
    assert r.status == 401
    b = r.json()
    assert b['category'] == 'EXPIRED_AUTHENTICATION'
    assert b['message'].startswith('The OAuth token used to make this call expired ')
    assert b['message'].endswith(' second(s) ago.')
    assert list(b['context']) == ['expire time']
    # a fresh one works again
    new = refresh(sandbox).json()['access_token']
    assert sandbox.api('GET', '/crm/v3/objects/contacts', token=new).status == 200


def test_expire_tokens_control(sandbox):
    tok = sandbox.issue_token()
    assert sandbox.api('GET', '/crm/v3/owners', token=tok).status == 200
    assert sandbox.expire_tokens() == 1
    r = sandbox.api('GET', '/crm/v3/owners', token=tok)
    assert r.status == 401 and r.json()['category'] == 'EXPIRED_AUTHENTICATION'


def test_rate_limit_headers(sandbox):
    sandbox.configure(rate_limit='100/10s', daily_limit=1000)
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    for h in RL:
        assert r.header(h) is not None, h
    assert r.header('X-HubSpot-RateLimit-Max') == '100'
    assert r.header('X-HubSpot-RateLimit-Interval-Milliseconds') == '10000'
    assert r.header('X-HubSpot-RateLimit-Remaining') == '99'
    assert r.header('X-HubSpot-RateLimit-Daily') == '1000'
    assert r.header('X-HubSpot-RateLimit-Daily-Remaining') == '999'
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    assert r.header('X-HubSpot-RateLimit-Remaining') == '98'
    # errors are counted and carry the headers too
    r = sandbox.api('GET', '/crm/v3/objects/contacts/999')
    assert r.status == 404 and r.header('X-HubSpot-RateLimit-Remaining') == '97'
    # OAuth calls: no daily headers (§7.2)
    r = sandbox.api('GET', '/crm/v3/objects/contacts', token=sandbox.issue_token())
    assert r.header('X-HubSpot-RateLimit-Max') == '100'
    assert r.header('X-HubSpot-RateLimit-Daily') is None


def test_no_headers_when_off(sandbox):
    sandbox.configure(daily_limit=0)
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    assert not [h for h in r.headers if h.lower().startswith('x-hubspot-ratelimit')]


def test_ten_secondly_rolling_429(sandbox):
    sandbox.configure(rate_limit='5/2s')
    statuses = [sandbox.api('GET', '/crm/v3/owners').status for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    assert r.status == 429
    b = r.json()
    assert b['status'] == 'error' and b['errorType'] == 'RATE_LIMIT'
    assert b['policyName'] == 'TEN_SECONDLY_ROLLING'
    assert b['message'] == 'You have reached your ten_secondly_rolling limit.'
    assert b['correlationId'] and b['groupName']
    assert r.header('Retry-After') is None
    assert r.header('X-HubSpot-RateLimit-Remaining') == '0'
    assert r.header('X-HubSpot-RateLimit-Interval-Milliseconds') == '2000'
    time.sleep(2.05)
    assert sandbox.api('GET', '/crm/v3/owners').status == 200      # window rolled


def test_retry_after_only_when_configured(sandbox):
    sandbox.configure(rate_limit='1/10s', retry_after=3)
    sandbox.api('GET', '/crm/v3/owners')
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == 429 and r.header('Retry-After') == '3'


def test_search_secondly_limit_separate_from_window(sandbox):
    sandbox.configure(rate_limit='3/10s', search_limit=5)
    res = [sandbox.api('POST', '/crm/v3/objects/contacts/search', {}).status
           for _ in range(6)]
    assert res[:5] == [200] * 5 and res[5] == 429
    r = sandbox.api('POST', '/crm/v3/objects/contacts/search', {})
    b = r.json()
    assert b['policyName'] == 'SECONDLY'
    assert b['message'] == 'You have reached your secondly limit.'
    assert b['errorType'] == 'RATE_LIMIT'
    assert not [h for h in r.headers if h.lower().startswith('x-hubspot-ratelimit')]
    # the searches did not use the 10 s window
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == 200 and r.header('X-HubSpot-RateLimit-Remaining') == '2'
    time.sleep(1.05)
    assert sandbox.api('POST', '/crm/v3/objects/contacts/search', {}).status == 200


def test_daily_limit_counts_search_too(sandbox):
    sandbox.configure(daily_limit=3, search_limit=0)
    assert sandbox.api('GET', '/crm/v3/owners').header(
        'X-HubSpot-RateLimit-Daily-Remaining') == '2'
    assert sandbox.api('POST', '/crm/v3/objects/contacts/search', {}).status == 200
    assert sandbox.api('GET', '/crm/v3/owners').header(
        'X-HubSpot-RateLimit-Daily-Remaining') == '0'
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == 429
    b = r.json()
    assert b['policyName'] == 'DAILY'
    assert b['message'] == 'You have reached your daily limit.'
    assert b['errorType'] == 'RATE_LIMIT' and b['requestId']
    assert sandbox.api('POST', '/crm/v3/objects/contacts/search', {}).status == 429
    assert sandbox.config()['daily_used'] == 3
    sandbox.configure(daily_used=0)
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


def test_control_routes_are_not_limited_or_logged(sandbox):
    sandbox.configure(rate_limit='1/10s')
    sandbox.api('GET', '/crm/v3/owners')
    for _ in range(5):
        sandbox.health()
        sandbox.record('contacts', 1000001)
    assert sandbox.count() == 1
