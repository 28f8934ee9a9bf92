#!/usr/bin/env python3
"""Start the hubfs HubSpot sandbox.

    /usr/bin/python3 -m tests.sandbox [options]     (from the repository root)
    /usr/bin/python3 tests/sandbox/run.py [options] (from anywhere)

See tests/sandbox/README.md for the options and the control API.
"""

import argparse
import os
import signal
import socket
import sys
import threading

if __package__ in (None, ''):
    # run as a script: make `tests.sandbox` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))

from tests.sandbox.server import App, Config, SandboxServer, parse_rate  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(prog='tests.sandbox',
                                description='Local HubSpot CRM API sandbox for hubfs.')
    p.add_argument('--host', default='127.0.0.1', help='listen address (default 127.0.0.1)')
    p.add_argument('--port', type=int, default=0, help='port; 0 picks a free one (default)')
    p.add_argument('--port-file', help='write the bound port here once listening')
    p.add_argument('--token', default='sandbox-token',
                   help='static bearer token that always works (default sandbox-token)')
    p.add_argument('--portal-id', type=int, default=12345678)
    p.add_argument('--rate-limit', default='100/10s',
                   help='rolling window, e.g. 100/10s, 190/10s, or off (default 100/10s)')
    p.add_argument('--daily-limit', type=int, default=250000, help='0 = off')
    p.add_argument('--search-limit', type=int, default=5,
                   help='search requests per second, 0 = off (default 5)')
    p.add_argument('--index-delay', type=float, default=10.0,
                   help='seconds before a write is visible to search (default 10)')
    p.add_argument('--latency-ms', type=int, default=0, help='added to every API request')
    p.add_argument('--token-expiry', type=int, default=1800,
                   help='expires_in of OAuth access tokens (default 1800)')
    p.add_argument('--retry-after', type=int, default=None,
                   help='send Retry-After: N on real 429s (default: never)')
    p.add_argument('--client-id', default='sandbox-client-id')
    p.add_argument('--client-secret', default='sandbox-client-secret')
    p.add_argument('--refresh-token', default='sandbox-refresh-token')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--contacts', type=int, default=None)
    p.add_argument('--companies', type=int, default=None)
    p.add_argument('--deals', type=int, default=None)
    p.add_argument('--tickets', type=int, default=None)
    p.add_argument('--objects', default=None, metavar='TYPE=N,...',
                   help='sizes of the other object types, e.g. notes=500,calls=200,'
                        'line_items=50,cars=20 (API name, objectTypeId, or a custom '
                        "object's name)")
    p.add_argument('--demo', action='store_true',
                   help='small realistic account (50 contacts, 15 companies, 30 deals, '
                        '10 tickets and every other type unless sizes are given)')
    p.add_argument('--no-custom-objects', action='store_true',
                   help='start without the seeded custom object schemas')
    p.add_argument('--scopes', default=None, metavar='LIST',
                   help='scopes the tokens have: a comma list of granted scopes, or '
                        '-scope,-scope to withhold some from all (default: all)')
    p.add_argument('--object-library', default=None, metavar='TYPE=on|off,...',
                   help='object-library enablement, e.g. 0-420=off,courses=off '
                        '(default: all four on)')
    p.add_argument('--search-cap', type=int, default=10000,
                   help='results one search query pages through (HubSpot: 10,000; a page '
                        'past them is a 400); lower it to test windowing cheaply')
    p.add_argument('--search-in-window', action='store_true',
                   help='count search requests in the rolling window too (HubSpot '
                        'documents search as a separate budget: off by default)')
    p.add_argument('--tls-cert', help='serve HTTPS with this certificate (PEM)')
    p.add_argument('--tls-key', help='private key of --tls-cert (PEM)')
    p.add_argument('--verbose', action='store_true', help='log requests to stderr')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        rate = parse_rate(args.rate_limit)
    except ValueError as e:
        print('sandbox: %s' % e, file=sys.stderr)
        return 2
    extra = {}
    if args.search_in_window:
        extra['search_in_window'] = True
    if args.search_cap != 10000:
        extra['search_cap'] = args.search_cap
    if args.scopes is not None:
        extra['scopes'] = args.scopes
    if args.object_library is not None:
        extra['object_library'] = args.object_library
    objects = {}
    try:
        for item in (args.objects or '').split(','):
            item = item.strip()
            if not item:
                continue
            k, _, v = item.partition('=')
            objects[k.strip()] = int(v)
        cfg = Config(token=args.token, portal_id=args.portal_id,
                     rate_limit=('off' if rate is None else '%d/%dms' % rate),
                     daily_limit=args.daily_limit, search_limit=args.search_limit,
                     index_delay=args.index_delay, latency_ms=args.latency_ms,
                     token_expiry=args.token_expiry, retry_after=args.retry_after,
                     client_id=args.client_id, client_secret=args.client_secret,
                     refresh_token=args.refresh_token, verbose=args.verbose, **extra)
        sizes = {k: getattr(args, k) for k in ('contacts', 'companies', 'deals', 'tickets')
                 if getattr(args, k) is not None}
        app = App(cfg, seed=args.seed, sizes=sizes, demo=args.demo, objects=objects,
                  custom=not args.no_custom_objects)
    except ValueError as e:
        print('sandbox: %s' % e, file=sys.stderr)
        return 2
    if ':' in args.host:
        SandboxServer.address_family = socket.AF_INET6
    try:
        server = SandboxServer((args.host, args.port), app)
    except OSError as e:
        print('sandbox: cannot listen on %s:%d: %s' % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % port)
        os.replace(tmp, args.port_file)
    if args.verbose:
        print('sandbox: listening on http://%s:%d (seed %s: %s)'
              % (args.host, port, app.seed_info['seed'], app.seed_info['sizes']),
              file=sys.stderr)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
