// scripts/bench-getall.js — row 34 of scripts/bench: HubSpot's official Node
// client exports every contact with its defaults (no limiter configured,
// retries as HUBFS_BENCH_RETRIES says,
// `getAll` walking the list endpoint one page of 100 after another), against
// the bench's sandbox. Prints one JSON line: {"count": N, "seconds": S}.
//
// Run by scripts/bench with NODE_PATH set to its cache of @hubspot/api-client;
// reads the sandbox URL from HUBFS_BENCH_URL, the token from HUBSPOT_TOKEN and
// the property names (comma-separated, as hubfs asks for them) from
// HUBFS_BENCH_PROPS.
'use strict';

const hubspot = require('@hubspot/api-client');

async function main() {
	const client = new hubspot.Client({
		accessToken: process.env.HUBSPOT_TOKEN,
		basePath: process.env.HUBFS_BENCH_URL,
		// 0 unless set: a getAll past 100 pages meets a 429 and would stop there
		numberOfApiCallRetries: Number(process.env.HUBFS_BENCH_RETRIES || 0),
	});
	const props = (process.env.HUBFS_BENCH_PROPS || '').split(',').filter((p) => p);
	const t0 = process.hrtime.bigint();
	const all = await client.crm.contacts.getAll(100, undefined, props.length ? props : undefined);
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	process.stdout.write(JSON.stringify({ count: all.length, seconds }) + '\n');
}

main().catch((e) => {
	process.stderr.write('bench-getall: ' + (e && e.message ? e.message : String(e)) + '\n');
	process.exit(1);
});
