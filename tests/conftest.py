"""Shared pytest fixtures: the HubSpot sandbox.

- ``sandbox_server`` (session): one sandbox subprocess on a free loopback
  port, seeded with 1,000 contacts / 200 companies / 300 deals / 100
  tickets, rate limits off, search index delay 2 s.  Always stopped at the
  end of the session.
- ``sandbox`` (function): the same server reset before the test (seed,
  sizes, configuration, faults, log, tokens) -> tests.sandbox.client.Sandbox.
  Tests change data or limits with ``sandbox.reset(contacts=...)`` and
  ``sandbox.configure(rate_limit='100/10s', ...)``; the next test starts
  from the defaults again.
"""

import os
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.sandbox.client import Sandbox, start_sandbox  # noqa: E402,F401

SANDBOX_DEFAULTS = dict(contacts=1000, companies=200, deals=300, tickets=100,
                        rate_limit='off', index_delay=2, seed=1)


@pytest.fixture(scope='session')
def sandbox_server():
    sb = start_sandbox(**SANDBOX_DEFAULTS)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_server):
    if sandbox_server.proc is not None and sandbox_server.proc.poll() is not None:
        pytest.fail('sandbox server died (exit %s); stderr in %s'
                    % (sandbox_server.proc.returncode, sandbox_server.stderr_path))
    sandbox_server.reset()
    yield sandbox_server
