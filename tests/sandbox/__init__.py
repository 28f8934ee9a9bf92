"""hubfs HubSpot sandbox: a local HubSpot CRM API server (stdlib only).

Run it with ``/usr/bin/python3 -m tests.sandbox --help`` from the repository
root; drive it from tests with ``tests.sandbox.client``.
"""
