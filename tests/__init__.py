# Makes tests/ a package so `from tests.sandbox.client import Sandbox` works
# from the repository root.
