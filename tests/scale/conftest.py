"""Scale suite fixtures (meson suite `scale`, run by `scripts/test --all`).

Reuses the mount fixture of tests/mount/conftest.py (`hubfs(*opts, ...)` ->
Mount) on top of a sandbox of its own: `sandbox` here overrides the shared
1,000-contact one of tests/conftest.py with a large account at HubSpot-like
limits (100 requests per 10 s, 50 ms latency), and can be restarted on the
same port (`sandbox.restart()`), which the mount does not notice except as a
few refused connections.

Tests here are collected only when the run names tests/scale (or `-m scale`),
so a plain `pytest` from the repository root does not start a 10-minute run.
"""
import os
import time

import pytest

from tests.mount.conftest import Mount, hubfs  # noqa: F401  (fixture reused as is)
from tests.sandbox.client import start_sandbox

HERE = os.path.dirname(os.path.abspath(__file__))

SCALE_SIZES = dict(contacts=100000, companies=2000, deals=20000, tickets=100)
SCALE_CONFIG = dict(rate_limit="100/10s", latency_ms=50, index_delay=2, seed=1)

REPORT = []   # lines printed in the terminal summary, even when output is captured


def pytest_configure(config):
    config.addinivalue_line("markers", "scale: long scale tests (suite scale)")


def _asked_for_scale(config):
    if "scale" in (config.getoption("markexpr", "") or ""):
        return True
    for a in config.args:
        p = os.path.abspath(a.split("::")[0])
        if p == HERE or p.startswith(HERE + os.sep):
            return True
    return False


def pytest_collection_modifyitems(config, items):
    if _asked_for_scale(config):
        return
    skip = pytest.mark.skip(reason="scale suite: run `pytest tests/scale` or `scripts/test --all`")
    for it in items:
        if str(it.fspath).startswith(HERE + os.sep):
            it.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("scale report")
        for line in REPORT:
            terminalreporter.write_line(line)


def report(line):
    REPORT.append(line)
    print(line, flush=True)


class RestartableSandbox:
    """A sandbox subprocess that can be stopped and started again on the same
    port with the same seed, sizes and configuration (the data comes back
    identical; writes made before the restart are gone). Attribute access is
    passed on to the current tests.sandbox.client.Sandbox."""

    def __init__(self, sizes, config):
        self.sizes = dict(sizes)
        self.config = dict(config)
        self.sb = start_sandbox(timeout=120, **self.sizes, **self.config)
        self.port = self.sb.port
        self.generation = 0
        self.old_logs = []     # request logs of the previous processes

    def __getattr__(self, name):
        return getattr(self.sb, name)

    def restart(self, down_s=0.0):
        """Stop the server (SIGTERM), optionally stay down down_s seconds, start
        a new one on the same port. Returns the seconds the port was closed.
        The old process's request log is kept in old_logs first."""
        try:
            self.old_logs.append(self.sb.log())
        except Exception:
            self.old_logs.append([])
        t0 = time.monotonic()
        self.sb.stop()
        if down_s:
            time.sleep(down_s)
        self.sb = start_sandbox("--port", str(self.port), timeout=120,
                                **self.sizes, **self.config)
        self.generation += 1
        return time.monotonic() - t0

    def all_logs(self):
        """Every request of every generation, oldest first."""
        out = []
        for entries in self.old_logs:
            out += entries
        return out + self.sb.log()

    def stop(self):
        self.sb.stop()


@pytest.fixture
def sandbox():
    sb = RestartableSandbox(SCALE_SIZES, SCALE_CONFIG)
    try:
        yield sb
    finally:
        sb.stop()
