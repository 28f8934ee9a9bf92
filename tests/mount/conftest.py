"""Mount fixture: a real hubfs daemon on a real mountpoint, against the sandbox.

Each test gets its own mountpoint. By default hubfs is started the way a user
starts it, without -f: the command forks the daemon and returns once the mount
serves, so the fixture requires it to exit 0 with the mountpoint already
mounted (no polling), and reads the daemon's pid from the mount lock it holds
in the state directory ($XDG_STATE_HOME/hubfs/<portal>/mount.lock). The
daemon keeps the fixture's stderr file (a regular file, see README "Running in
the background"), so its messages are scanned as before. The fixture is a
child subreaper (prctl), so the daemon, orphaned when the command exits, is
reparented to it and its exit status can still be collected.

hubfs(..., foreground=True) starts it with -f instead (the daemon is the
process started; the fixture polls os.path.ismount with a deadline, failing at
once if it died).

Either way, at teardown the fixture unmounts with fusermount3 -u and requires
the daemon to exit 0; on the failure path it lazily unmounts and kills the
daemon by pid. Daemon stderr is scanned for errors, warnings and sanitizer
reports, with a per-mount allow-list.
"""
import ctypes
import glob
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
PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: fault-injection tests (suite faults)")
    config.addinivalue_line("markers", "scale: long scale tests (suite scale)")


def pytest_collection_modifyitems(config, items):
    """HUBFS_SHARD=k/n keeps every n-th test from the k-th, so meson can run
    the mount suite as n tests side by side (they mostly wait on the
    sandbox's latency, not the CPU). Test by test, not file by file: a few
    files hold most of the wall time. Every test sets up its own mounts."""
    shard = os.environ.get("HUBFS_SHARD")
    if not shard:
        return
    k, n = (int(x) for x in shard.split("/"))
    keep = [it for i, it in enumerate(items) if i % n == k]
    gone = [it for i, it in enumerate(items) if i % n != k]
    if gone:
        config.hook.pytest_deselected(items=gone)
    items[:] = keep


def become_subreaper():
    """Orphaned descendants (a daemonized hubfs) become our children."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def wait_pid(pid, timeout):
    """Exit status of our child pid (a reparented daemon), or None if it is
    still running after timeout seconds."""
    end = time.time() + timeout
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)   # ChildProcessError: not ours (a bug here)
        if done:
            return os.waitstatus_to_exitcode(st)
        if time.time() > end:
            return None
        time.sleep(0.05)


class Mount:
    def __init__(self, path, proc, errfile, allow, daemon, state):
        self.path = str(path)
        self.proc = proc        # the process started: the daemon (-f) or the command that forks it
        self.errfile = errfile
        self.allow = [re.compile(a, re.I) for a in allow]
        self.unmounted = False
        self.daemon = daemon    # started without -f
        self.state = str(state)
        self._pid = None if daemon else proc.pid
        self._rc = None         # the daemon's exit status, once collected

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def stderr(self):
        with open(self.errfile, errors="replace") as f:
            return f.read()

    def status(self):
        with open(self.p(".hubfs", "status.json")) as f:
            return json.load(f)

    @property
    def pid(self):
        """The pid of the process serving the mount."""
        if self._pid is None:
            self._pid = self._find_pid()
        return self._pid

    def _find_pid(self):
        # The daemon's mount lock in the state directory names it:
        # "<pid>\n<mountpoint>\n" (read, not status.json, whose one-second
        # snapshot a test would then see).
        for lock in glob.glob(os.path.join(self.state, "hubfs", "*", "mount.lock")):
            with open(lock) as f:
                lines = f.read().split("\n")
            if len(lines) >= 2 and lines[1] == os.path.realpath(self.path):
                return int(lines[0])
        return None

    def alive(self):
        return self.pid is not None and self.wait_exit(0) is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def run(self, cmd, check=True, timeout=120, **kw):
        """Run a shell command with the mountpoint as cwd."""
        return subprocess.run(cmd, shell=isinstance(cmd, str), cwd=self.path, check=check,
                              capture_output=True, text=True, timeout=timeout, **kw)

    def wait_exit(self, timeout):
        """The daemon's exit status, or None if it still runs after timeout s."""
        if not self.daemon:
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        if self._rc is None and self.pid is not None:
            self._rc = wait_pid(self.pid, timeout)
        return self._rc

    def unmount(self, expect_rc=0):
        if self.unmounted:
            return
        self.unmounted = True
        if self.daemon and self.proc.poll() is None:
            self.proc.wait(timeout=60)   # the command that forked (wait=False)
        r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True, text=True)
        rc = self.wait_exit(90)
        if rc is None:
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
        if self.daemon and self.pid is not None and self.wait_exit(0) is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait_exit(30)


VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]


def launch(argv, mnt, errfile, env, state, allow=(), foreground=False, wait=True):
    """Run hubfs ARGV (under valgrind when HUBFS_VALGRIND is set) and wait until
    MNT is mounted: without -f the command must return 0 with the mount there
    and its daemon's pid in the state directory, as mount(8) sees it. Returns
    (Mount, None), or (None, (exit status, stderr)) when hubfs exited instead
    of mounting; a hang or a half-made mount fails the test. wait=False: the
    Mount at once, without waiting."""
    if os.environ.get("HUBFS_VALGRIND"):
        argv = VALGRIND + argv
    with open(errfile, "w") as ef:
        proc = subprocess.Popen(argv, stdout=ef, stderr=ef, env=env, stdin=subprocess.DEVNULL)
    m = Mount(mnt, proc, errfile, allow, not foreground, state)
    if not wait:
        return m, None
    limit = 60 if os.environ.get("HUBFS_VALGRIND") else 15

    def give_up(why):
        m.kill()
        m.unmounted = True
        pytest.fail(f"{why}:\n{m.stderr()}")

    if not foreground:
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            give_up(f"hubfs did not return within {limit} s")
        if rc != 0:
            m.unmounted = True
            assert not os.path.ismount(mnt), "hubfs failed but left a mount"
            return None, (rc, m.stderr())
        if not os.path.ismount(mnt):
            give_up("hubfs returned 0 before its mount was there")
        if m.pid is None:
            give_up("no daemon pid in the state directory's mount.lock")
        return m, None
    deadline = time.time() + limit
    while not os.path.ismount(mnt):
        if proc.poll() is not None:
            m.unmounted = True
            return None, (proc.returncode, m.stderr())
        if time.time() > deadline:
            give_up("hubfs did not mount within the deadline")
        time.sleep(0.05)
    return m, None


@pytest.fixture
def hubfs(sandbox, tmp_path):
    """Factory: hubfs(*opts, allow=(), env=None, token=None, wait=True,
    foreground=False, unset=(), mnt=None, api_url=True) -> Mount (unmounted at
    teardown). foreground: -f instead of the default background daemon;
    unset: environment variables to remove; mnt: an existing empty directory
    to mount on instead of one under tmp_path; api_url=False leaves
    -o api_url= (the sandbox) out."""
    mounts = []
    become_subreaper()

    def start(*opts, allow=(), env=None, token=None, wait=True, foreground=False, unset=(),
              mnt=None, api_url=True):
        if mnt is None:
            mnt = tmp_path / f"mnt{len(mounts)}"
            mnt.mkdir()
        errfile = str(tmp_path / f"hubfs{len(mounts)}.stderr")
        args = [HUBFS] + (["-f"] if foreground else []) + \
            (["-o", f"api_url={sandbox.url}"] if api_url else [])
        for o in opts:
            args += ["-o", o]
        args.append(str(mnt))
        e = dict(os.environ)
        e["HUBSPOT_TOKEN"] = token if token is not None else sandbox.token
        e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
        e["XDG_STATE_HOME"] = str(tmp_path / "state")
        e["XDG_CACHE_HOME"] = str(tmp_path / "cache")   # the disk cache: per test
        if env:
            e.update(env)
        for k in unset:
            e.pop(k, None)
        m, failed = launch(args, mnt, errfile, e, tmp_path / "state", allow, foreground, wait)
        if failed:
            pytest.fail(f"hubfs exited {failed[0]} instead of mounting:\n{failed[1]}")
        mounts.append(m)
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
