"""Mount fixture: a real hubfs daemon on a real mountpoint, against the sandbox.

Each test gets its own mountpoint. The daemon runs in the foreground (-f); the
fixture waits for the mount with a deadline (failing at once if the daemon
died), and at teardown unmounts with fusermount3 -u and requires the daemon to
exit 0. On the failure path it lazily unmounts and kills the daemon by pid.
Daemon stderr is scanned for errors, warnings and sanitizer reports, with a
per-mount allow-list.
"""
import json
import os
import re
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUBFS = os.environ.get("HUBFS_BIN") or os.path.join(ROOT, "build", "hubfs")
BAD = re.compile(r"error|warning|AddressSanitizer|LeakSanitizer|runtime error|==\d+==", re.I)


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: fault-injection tests (suite faults)")
    config.addinivalue_line("markers", "scale: long scale tests (suite scale)")


class Mount:
    def __init__(self, path, proc, errfile, allow):
        self.path = str(path)
        self.proc = proc
        self.errfile = errfile
        self.allow = [re.compile(a, re.I) for a in allow]
        self.unmounted = False

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def stderr(self):
        with open(self.errfile, errors="replace") as f:
            return f.read()

    def status(self):
        with open(self.p(".hubfs", "status.json")) as f:
            return json.load(f)

    def run(self, cmd, check=True, timeout=120, **kw):
        """Run a shell command with the mountpoint as cwd."""
        return subprocess.run(cmd, shell=isinstance(cmd, str), cwd=self.path, check=check,
                              capture_output=True, text=True, timeout=timeout, **kw)

    def unmount(self, expect_rc=0):
        if self.unmounted:
            return
        self.unmounted = True
        r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True, text=True)
        try:
            rc = self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"hubfs did not exit after fusermount3 -u ({r.stderr.strip()})")
        if r.returncode != 0:
            self.kill()
            pytest.fail(f"fusermount3 -u failed: {r.stderr.strip()}")
        assert rc == expect_rc, f"hubfs exited {rc}; stderr:\n{self.stderr()[-4000:]}"
        bad = [line for line in self.stderr().splitlines()
               if BAD.search(line) and not any(a.search(line) for a in self.allow)]
        assert not bad, "daemon stderr:\n" + "\n".join(bad[:40])

    def kill(self):
        subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def hubfs(sandbox, tmp_path):
    """Factory: hubfs(*opts, allow=(), env=None, unset=(), mnt=None) -> Mount
    (unmounted at teardown). unset: environment variables to remove; mnt: an
    existing empty directory to mount on instead of one under tmp_path;
    api_url=False leaves -o api_url= (the sandbox) out."""
    mounts = []

    def start(*opts, allow=(), env=None, token=None, wait=True, unset=(), mnt=None,
              api_url=True):
        if mnt is None:
            mnt = tmp_path / f"mnt{len(mounts)}"
            mnt.mkdir()
        errfile = str(tmp_path / f"hubfs{len(mounts)}.stderr")
        args = [HUBFS, "-f"] + (["-o", f"api_url={sandbox.url}"] if api_url else [])
        for o in opts:
            args += ["-o", o]
        args.append(str(mnt))
        if os.environ.get("HUBFS_VALGRIND"):
            args = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"] + args
        e = dict(os.environ)
        e["HUBSPOT_TOKEN"] = token if token is not None else sandbox.token
        e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
        e["XDG_STATE_HOME"] = str(tmp_path / "state")
        if env:
            e.update(env)
        for k in unset:
            e.pop(k, None)
        with open(errfile, "w") as ef:
            proc = subprocess.Popen(args, stdout=ef, stderr=ef, env=e, stdin=subprocess.DEVNULL)
        m = Mount(mnt, proc, errfile, allow)
        mounts.append(m)
        if not wait:
            return m
        deadline = time.time() + (60 if os.environ.get("HUBFS_VALGRIND") else 15)
        while not os.path.ismount(mnt):
            if proc.poll() is not None:
                m.unmounted = True
                pytest.fail(f"hubfs exited {proc.returncode} before mounting:\n{m.stderr()}")
            if time.time() > deadline:
                m.kill()
                m.unmounted = True
                pytest.fail(f"hubfs did not mount within the deadline:\n{m.stderr()}")
            time.sleep(0.05)
        return m

    yield start
    failed = []
    for m in mounts:
        try:
            m.unmount()
        except BaseException as exc:  # keep unmounting the others
            failed.append(exc)
            m.kill()
    if failed:
        raise failed[0]
