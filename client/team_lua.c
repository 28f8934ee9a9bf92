/* team_lua.c - the scripts of team_lua.h. The budget logic mirrors
 * ratelimit.c (read that first); here it runs inside Redis so that every
 * mount's grant is checked and recorded atomically against one window. */
#include "client/team_lua.h"

#include <stddef.h>

/* Shared by the budget scripts: the clock, the settings with their defaults. */
#define PRELUDE \
	"local function now_ms()\n" \
	"  local t = redis.call('TIME')\n" \
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"end\n" \
	"local function margin(iv)\n" \
	"  local m = math.floor(iv / 10)\n" \
	"  if m > 250 then m = 250 end\n" \
	"  return m\n" \
	"end\n" \
	"local share = {[0] = 100, [1] = 90, [2] = 60}\n" \
	"local reserve = {[0] = 0, [1] = 10, [2] = 50}\n" \
	"local function cfg_read()\n" \
	"  local v = redis.call('HMGET', KEYS[1], 'max', 'iv', 'smax', 'siv', 'wpause', 'spause',\n" \
	"    'dlim', 'drem', 'dpause', 'probe_at', 'wseq', 'sseq', 'ext', 'granted', 'day', 'day_n')\n" \
	"  local c = {}\n" \
	"  c.max = tonumber(v[1]) or tonumber(ARGV[1])\n" \
	"  c.iv = tonumber(v[2]) or tonumber(ARGV[2])\n" \
	"  c.smax = tonumber(v[3]) or tonumber(ARGV[3])\n" \
	"  c.siv = tonumber(v[4]) or tonumber(ARGV[4])\n" \
	"  c.wpause = tonumber(v[5]) or 0\n" \
	"  c.spause = tonumber(v[6]) or 0\n" \
	"  c.dlim = tonumber(v[7]) or -1\n" \
	"  c.drem = tonumber(v[8]) or -1\n" \
	"  c.dpause = tonumber(v[9]) or 0\n" \
	"  c.probe_at = tonumber(v[10]) or 0\n" \
	"  c.wseq = tonumber(v[11]) or 0\n" \
	"  c.sseq = tonumber(v[12]) or 0\n" \
	"  c.ext = tonumber(v[13]) or 0\n" \
	"  c.granted = tonumber(v[14]) or 0\n" \
	"  c.day = tonumber(v[15]) or -1\n" \
	"  c.day_n = tonumber(v[16]) or 0\n" \
	"  c.probe_ms = tonumber(ARGV[5])\n" \
	"  c.span = c.iv + margin(c.iv)\n" \
	"  c.sspan = c.siv + margin(c.siv)\n" \
	"  c.inflight = tonumber(ARGV[6])\n" \
	"  local longest = math.max(c.span, c.sspan) + 1000\n" \
	"  if c.inflight < longest then c.inflight = longest end\n" \
	"  return c\n" \
	"end\n" \
	"local function touch(c)\n" \
	"  redis.call('PEXPIRE', KEYS[1], 172800000)\n" \
	"end\n" \
	"local function class(c, search)\n" \
	"  if search then return KEYS[3], c.smax, c.sspan, 'spause', c.spause end\n" \
	"  return KEYS[2], c.max, c.span, 'wpause', c.wpause\n" \
	"end\n"

static const char acquire_lua[] = PRELUDE
	"local now = now_ms()\n"
	"local prio = tonumber(ARGV[7])\n"
	"local search = ARGV[8] == '1'\n"
	"if share[prio] == nil then prio = 2 end\n"
	"for i, f in ipairs({'max', 'iv', 'smax', 'siv'}) do\n"
	"  redis.call('HSETNX', KEYS[1], f, ARGV[i])\n"
	"end\n"
	"local c = cfg_read()\n"
	"local key, max, span, pname, pause = class(c, search)\n"
	"redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
	"local used = redis.call('ZCARD', key)\n"
	"local cap = math.floor(max * share[prio] / 100)\n"
	"if cap < 1 then cap = 1 end\n"
	"local wait = 0\n"
	"if pause > now then wait = pause - now end\n"
	"if used >= cap then\n"
	/* room appears once the (used - cap)-th request has left; one still in
	 * flight leaves no earlier than a span after it ends, so at least span */
	"  local e = redis.call('ZRANGE', key, used - cap, used - cap, 'WITHSCORES')\n"
	"  local w = tonumber(e[2]) - now\n"
	"  if w > span then w = span end\n"
	"  if w < 1 then w = 1 end\n"
	"  if w > wait then wait = w end\n"
	"end\n"
	"local probe = false\n"
	"if prio ~= 0 then\n"
	"  local held = c.dpause == 1\n"
	"  if not held and c.dlim > 0 and c.drem >= 0 then\n"
	"    held = c.drem <= math.floor(c.dlim * reserve[prio] / 1000)\n"
	"  end\n"
	"  if held then\n"
	"    if c.probe_at > now then\n"
	"      if c.probe_at - now > wait then wait = c.probe_at - now end\n"
	"    else\n"
	"      probe = true\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if wait > 0 then return {wait} end\n"
	"if probe then redis.call('HSET', KEYS[1], 'probe_at', now + c.probe_ms) end\n"
	"local seq\n"
	"if search then\n"
	"  seq = redis.call('HINCRBY', KEYS[1], 'sseq', 1)\n"
	"else\n"
	"  seq = redis.call('HINCRBY', KEYS[1], 'wseq', 1)\n"
	"end\n"
	"redis.call('ZADD', key, now + c.inflight, seq)\n"
	"redis.call('PEXPIRE', key, c.inflight + span)\n"
	"if c.drem > 0 then redis.call('HINCRBY', KEYS[1], 'drem', -1) end\n"
	"redis.call('HINCRBY', KEYS[1], 'granted', 1)\n"
	"local day = math.floor(now / 86400000)\n"
	"if c.day ~= day then\n"
	"  redis.call('HSET', KEYS[1], 'day', day, 'day_n', 1)\n"
	"else\n"
	"  redis.call('HINCRBY', KEYS[1], 'day_n', 1)\n"
	"end\n"
	"touch(c)\n"
	"return {0, seq, used + 1, c.ext}\n";

static const char done_lua[] = PRELUDE
	"local now = now_ms()\n"
	"local c = cfg_read()\n"
	"local key, max, span = class(c, ARGV[8] == '1')\n"
	"if redis.call('ZADD', key, 'XX', 'CH', now + span, ARGV[7]) == 1 then\n"
	"  redis.call('PEXPIRE', key, c.inflight + span)\n"
	"end\n"
	"local status = tonumber(ARGV[9])\n"
	/* any answer but a 429 means the server takes calls again */
	"if status > 0 and status ~= 429 and c.dpause == 1 then\n"
	"  redis.call('HSET', KEYS[1], 'dpause', 0)\n"
	"end\n"
	"return 1\n";

static const char headers_lua[] = PRELUDE
	"local now = now_ms()\n"
	"local c = cfg_read()\n"
	"local h_max, h_iv, h_rem = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local h_daily, h_drem = tonumber(ARGV[10]), tonumber(ARGV[11])\n"
	"local t_used, t_seq, t_ext = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])\n"
	/* the same sanity bounds as ratelimit.c */
	"if h_max > 0 and h_max <= 100000 and h_max ~= c.max then\n"
	"  redis.call('HSET', KEYS[1], 'max', h_max)\n"
	"  c.max = h_max\n"
	"end\n"
	"if h_iv >= 100 and h_iv <= 3600000 and h_iv ~= c.iv then\n"
	"  redis.call('HSET', KEYS[1], 'iv', h_iv)\n"
	"  c.iv = h_iv\n"
	"  c.span = h_iv + margin(h_iv)\n"
	"end\n"
	"if h_daily > 0 then redis.call('HSET', KEYS[1], 'dlim', h_daily) end\n"
	"if h_drem >= 0 then redis.call('HSET', KEYS[1], 'drem', h_drem) end\n"
	"local added = 0\n"
	"if t_seq > 0 and h_rem >= 0 and h_rem < c.max then\n"
	/* the server counts at most the team's requests in the window at grant
	 * time plus those granted (or found external) since: the rest is another
	 * client of the app, counted as used for one span */
	"  local ours = t_used + (c.wseq - t_seq) + (c.ext - t_ext)\n"
	"  local extra = (c.max - h_rem) - ours\n"
	/* a script blocks the whole server: however odd the header, add at
	 * most 1000 per answer (HubSpot's largest window is 250) */
	"  if extra > 1000 then extra = 1000 end\n"
	"  if extra > 0 then\n"
	"    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"    local used = redis.call('ZCARD', KEYS[2])\n"
	"    while extra > 0 and used < c.max do\n"
	"      local x = redis.call('HINCRBY', KEYS[1], 'ext', 1)\n"
	"      redis.call('ZADD', KEYS[2], now + c.span, 'x' .. x)\n"
	"      used = used + 1\n"
	"      extra = extra - 1\n"
	"      added = added + 1\n"
	"    end\n"
	"    if added > 0 then redis.call('PEXPIRE', KEYS[2], c.inflight + c.span) end\n"
	"  end\n"
	"end\n"
	"touch(c)\n"
	"return added\n";

static const char n429_lua[] = PRELUDE
	"local now = now_ms()\n"
	"local c = cfg_read()\n"
	"local policy = tonumber(ARGV[7])\n"
	"local search = ARGV[8] == '1'\n"
	"local ra = tonumber(ARGV[9])\n"
	"local have_ra = ra >= 0 and ra <= 86400000\n"
	"if have_ra and ra < 100 then ra = 100 end\n"
	"if policy == 0 then\n"
	"  if search then policy = 2 else policy = 1 end\n"
	"end\n"
	"if policy < 1 or policy > 3 then policy = 1 end\n"
	"redis.call('HINCRBY', KEYS[1], 'n429_' .. policy, 1)\n"
	"local function pause_until(field, old, t)\n"
	"  if t > old then redis.call('HSET', KEYS[1], field, t) end\n"
	"end\n"
	"local key, max, span, pname, pause = class(c, search)\n"
	"if policy == 3 then\n"
	"  local wait = c.probe_ms\n"
	"  if have_ra then wait = ra end\n"
	"  redis.call('HSET', KEYS[1], 'dpause', 1, 'probe_at', now + wait)\n"
	"elseif policy == 2 then\n"
	"  local wait = 1000\n"
	"  if have_ra then wait = ra end\n"
	"  pause_until(pname, pause, now + wait)\n"
	"else\n"
	"  local wait = c.span\n"
	"  if have_ra then wait = ra end\n"
	"  pause_until('wpause', c.wpause, now + wait)\n"
	"  if search then pause_until('spause', c.spause, now + wait) end\n"
	"end\n"
	"touch(c)\n"
	"return 1\n";

static const char stats_lua[] = PRELUDE
	"local now = now_ms()\n"
	"local c = cfg_read()\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
	"local used = redis.call('ZCARD', KEYS[2])\n"
	"local w = {}\n"
	"w.max = c.max\n"
	"w.interval_ms = c.iv\n"
	"w.used = used\n"
	/* a done request leaves within a span; one still in flight later */
	"w.inflight = redis.call('ZCOUNT', KEYS[2], '(' .. (now + c.span), '+inf')\n"
	"w.left = math.max(0, c.max - used)\n"
	"w.paused_ms = math.max(0, c.wpause - now)\n"
	"w.search_max = c.smax\n"
	"w.search_interval_ms = c.siv\n"
	"w.search_used = redis.call('ZCARD', KEYS[3])\n"
	"w.search_paused_ms = math.max(0, c.spause - now)\n"
	"w.daily_limit = c.dlim\n"
	"w.daily_remaining = c.drem\n"
	"w.daily_paused = c.dpause == 1\n"
	"w.granted = c.granted\n"
	"w.granted_today = 0\n"
	"if c.day == math.floor(now / 86400000) then w.granted_today = c.day_n end\n"
	"w.external = c.ext\n"
	"local n = redis.call('HMGET', KEYS[1], 'n429_1', 'n429_2', 'n429_3')\n"
	"w.n429 = {TEN_SECONDLY_ROLLING = tonumber(n[1]) or 0, SECONDLY = tonumber(n[2]) or 0,\n"
	"  DAILY = tonumber(n[3]) or 0}\n"
	"local hb = tonumber(ARGV[8])\n"
	"local mounts = {}\n"
	"local m = redis.call('ZRANGEBYSCORE', KEYS[4], now - 3 * hb, '+inf', 'WITHSCORES')\n"
	"for i = 1, #m, 2 do\n"
	"  mounts[#mounts + 1] = {id = m[i], age_ms = math.max(0, now - tonumber(m[i + 1]))}\n"
	"end\n"
	"local leases = {}\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)\n"
	"local l = redis.call('ZRANGE', KEYS[5], 0, 99)\n"
	"for i = 1, #l do\n"
	"  local holder = redis.call('GET', ARGV[7] .. l[i])\n"
	"  if holder then\n"
	"    leases[#leases + 1] = {name = l[i], holder = holder,\n"
	"      ttl_ms = redis.call('PTTL', ARGV[7] .. l[i])}\n"
	"  end\n"
	"end\n"
	"return cjson.encode({window = w, mounts_seen = mounts, leases = leases})\n";

static const char heartbeat_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local hb = tonumber(ARGV[2])\n"
	"if ARGV[3] == '1' then\n"
	"  redis.call('ZREM', KEYS[1], ARGV[1])\n"
	"else\n"
	"  redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
	"end\n"
	/* a mount that missed three heartbeats is gone */
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - 3 * hb))\n"
	"local n = redis.call('ZCARD', KEYS[1])\n"
	"if n > 0 then redis.call('PEXPIRE', KEYS[1], 10 * hb) end\n"
	"return n\n";

static const char lease_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local ttl = tonumber(ARGV[2])\n"
	"if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then\n"
	"  local cur = redis.call('GET', KEYS[1])\n"
	"  if cur ~= ARGV[1] then return {0, cur} end\n"
	"  redis.call('PEXPIRE', KEYS[1], ttl)\n"
	"end\n"
	/* the index lets team_stats() list leases without scanning the keyspace */
	"redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"redis.call('PEXPIRE', KEYS[2], 86400000)\n"
	"return {1, ARGV[1]}\n";

static const char release_lua[] =
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
	"redis.call('DEL', KEYS[1])\n"
	"redis.call('ZREM', KEYS[2], ARGV[2])\n"
	"return 1\n";

static const char *const scripts[TEAM_LUA_COUNT] = {
	[TEAM_LUA_ACQUIRE] = acquire_lua,
	[TEAM_LUA_DONE] = done_lua,
	[TEAM_LUA_HEADERS] = headers_lua,
	[TEAM_LUA_N429] = n429_lua,
	[TEAM_LUA_STATS] = stats_lua,
	[TEAM_LUA_HEARTBEAT] = heartbeat_lua,
	[TEAM_LUA_LEASE] = lease_lua,
	[TEAM_LUA_RELEASE] = release_lua,
};

const char *team_lua_text(enum team_script s)
{
	if ((unsigned)s >= TEAM_LUA_COUNT)
		return NULL;
	return scripts[s];
}
