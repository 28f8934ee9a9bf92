"""Fixtures of the sandbox's own suite (the shared ones are in tests/conftest.py).

- ``demo_server`` (module): a sandbox started with ``--demo`` (every object
  type seeded, custom objects, labeled associations), rate limits off,
  index delay 0.  Stopped at the end of the module.
- ``demo`` (function): that server after ``reset()``.
"""

import pytest

from tests.sandbox.client import start_sandbox


@pytest.fixture(scope='module')
def demo_server():
    sb = start_sandbox(demo=True, rate_limit='off', index_delay=0, search_limit=0)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def demo(demo_server):
    if demo_server.proc is not None and demo_server.proc.poll() is not None:
        pytest.fail('demo sandbox died (exit %s); stderr in %s'
                    % (demo_server.proc.returncode, demo_server.stderr_path))
    demo_server.reset()
    yield demo_server
