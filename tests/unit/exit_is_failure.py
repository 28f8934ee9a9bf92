"""Run a command; pass if it fails with a real failure status: not 0, and not
77 (which meson counts as a skip). Used to check that a C test whose sandbox
cannot start fails instead of being skipped."""
import subprocess
import sys

r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)
print(r.stderr[-2000:], file=sys.stderr)
if r.returncode in (0, 77):
    sys.exit(f"{sys.argv[1]} exited {r.returncode}; expected a failure")
