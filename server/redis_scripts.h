/*
 * redis_scripts.h - the Lua scripts of the Redis job store (jobstore_redis.c), one per step
 * of a job's life that must be atomic. Each runs with the prelude's helpers.
 *
 * The rule that makes a job complete exactly once: a job's record holds `attempt`, the
 * number of runs started (ACQUIRE increments it and sets the lease). Only the replica whose
 * attempt is the record's may publish progress, renew the lease or write the outcome
 * (END), and only while the job has not ended; every other write is refused ('lost',
 * 'ended', 'gone') and the replica drops its run. A finished job's queue entry is acked and
 * deleted in the same script that writes its outcome, so it is never delivered again.
 */
#ifndef SRV_REDIS_SCRIPTS_H
#define SRV_REDIS_SCRIPTS_H

#define LUA_PRELUDE                                                                              \
    "local function now_ms() local t = redis.call('TIME') "                                      \
    "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"                    \
    "local function ended(st) return st == 'completed' or st == 'failed' or st == 'cancelled' end\n" \
    "local function drop_entry(q, group, entry) redis.call('XACK', q, group, entry) "            \
    "redis.call('XDEL', q, entry) end\n"                                                         \
    "local function expire_like(k, rec) local ttl = redis.call('TTL', rec) "                     \
    "if ttl > 0 then redis.call('EXPIRE', k, ttl) end end\n"                                     \
    "local function expire_all(ttl, idem, ...) for _, k in ipairs({...}) do "                    \
    "redis.call('EXPIRE', k, ttl) end if idem and idem ~= '' then "                              \
    "redis.call('EXPIRE', 'edm:idem:' .. idem, ttl) end end\n"

/* CREATE: KEYS record, queue, idem key; ARGV id, timeout_ms, job_ttl_s, idem ('' none),
 * max unfinished jobs, body SHA-256, then field/value pairs of the record. A record that
 * exists is a retried call (its reply was lost): the job is not made twice. The idem key
 * holds "id sha" (a value of an older edmd, without the sha, matches any body).
 * -> {'created', entry} | {'existing', id} | {'reused', id} | {'full', n} */
#define LUA_CREATE                                                                               \
    "if redis.call('EXISTS', KEYS[1]) == 1 then return {'existing', ARGV[1]} end\n"              \
    "if ARGV[4] ~= '' then local v = redis.call('GET', KEYS[3]) if v then "                      \
    "local prev, sha = string.match(v, '^(%S+) ?(%S*)$') "                                       \
    "if prev and redis.call('EXISTS', 'edm:job:' .. prev) == 1 then "                            \
    "if sha ~= '' and sha ~= ARGV[6] then return {'reused', prev} end "                          \
    "return {'existing', prev} end end end\n"                                                    \
    "local n = redis.call('XLEN', KEYS[2]) "                                                     \
    "if n >= tonumber(ARGV[5]) then return {'full', n} end\n"                                    \
    "local now = now_ms() local ttl = math.ceil(tonumber(ARGV[2]) / 1000 + tonumber(ARGV[3])) + 60\n" \
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'queued', 'attempt', 0, 'created_ms', now, " \
    "'deadline', now + tonumber(ARGV[2]), 'step_done', 0, 'nfe_done', 0, 'idem', ARGV[4], unpack(ARGV, 7))\n" \
    "local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])\n"                            \
    "redis.call('HSET', KEYS[1], 'entry', entry) redis.call('EXPIRE', KEYS[1], ttl)\n"           \
    "if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[1] .. ' ' .. ARGV[6], 'EX', ttl) end\n" \
    "return {'created', entry}\n"

/* ACQUIRE: KEYS record, lease, queue, events; ARGV group, entry, consumer, lease_ms.
 * -> {'run', attempt, request, remaining_ms, waited_ms, created} | {'skip', why} | {'held'} */
#define LUA_ACQUIRE                                                                              \
    "local h = redis.call('HMGET', KEYS[1], 'state', 'entry', 'request', 'deadline', 'created_ms', 'created')\n" \
    "if not h[1] or ended(h[1]) or h[2] ~= ARGV[2] then drop_entry(KEYS[3], ARGV[1], ARGV[2]) " \
    "return {'skip', h[1] or 'gone'} end\n"                                                      \
    "if redis.call('EXISTS', KEYS[2]) == 1 then return {'held'} end\n"                           \
    "local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)\n"                             \
    "redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. attempt, 'PX', ARGV[4])\n"                     \
    "redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'step_done', 0, 'nfe_done', 0)\n"             \
    "if attempt > 1 then redis.call('XADD', KEYS[4], '*', 't', 'restart', 'attempt', attempt) "  \
    "expire_like(KEYS[4], KEYS[1]) end\n"                                                        \
    "local now = now_ms()\n"                                                                     \
    "return {'run', attempt, h[3], tonumber(h[4]) - now, now - tonumber(h[5]), h[6]}\n"

/* PROGRESS: KEYS record, events; ARGV attempt, running ('1': publish that it runs),
 * step_done, nfe_done, then step/nfe pairs of the steps reached. -> 1 | 0 (not ours) */
#define LUA_PROGRESS                                                                             \
    "local h = redis.call('HMGET', KEYS[1], 'state', 'attempt')\n"                               \
    "if not h[1] or ended(h[1]) or h[2] ~= ARGV[1] then return 0 end\n"                          \
    "if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'state', 'running', 't_started', now_ms()) " \
    "redis.call('XADD', KEYS[2], '*', 't', 'running', 'attempt', ARGV[1]) end\n"                 \
    "for i = 5, #ARGV, 2 do redis.call('XADD', KEYS[2], '*', 't', 'progress', 'step', ARGV[i], "  \
    "'nfe', ARGV[i + 1]) end\n"                                                                  \
    "redis.call('HSET', KEYS[1], 'step_done', ARGV[3], 'nfe_done', ARGV[4])\n"                   \
    "expire_like(KEYS[2], KEYS[1]) return 1\n"

/* RENEW: KEYS record, lease, queue; ARGV group, consumer, attempt, lease_ms, entry.
 * The entry is claimed again by its holder, which resets its idle time: XAUTOCLAIM takes
 * only entries whose holder stopped renewing. -> 'ok' | 'lost' | 'ended' | 'gone' */
#define LUA_RENEW                                                                                \
    "local h = redis.call('HMGET', KEYS[1], 'state', 'attempt')\n"                               \
    "if not h[1] then return 'gone' end if ended(h[1]) then return 'ended' end\n"                \
    "if h[2] ~= ARGV[3] then return 'lost' end\n"                                                \
    "redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3], 'PX', ARGV[4])\n"                     \
    "redis.call('XCLAIM', KEYS[3], ARGV[1], ARGV[2], 0, ARGV[5], 'JUSTID') return 'ok'\n"

/* END: KEYS record, lease, queue, events, images; ARGV group, entry, attempt, job_ttl_s,
 * mode ('completed', 'failed', 'cancelled' or 'release'), result or error JSON, consumer,
 * idle_ms, then the PNGs of a completed job. 'release' gives the job back to the queue:
 * its entry is made idle so that any replica's XAUTOCLAIM takes it at once. A job that
 * ended as this very run says is a retry of a call whose reply was lost: 'ok'.
 * -> 'ok' | 'lost' | 'ended' | 'gone' */
#define LUA_END                                                                                  \
    "local h = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'idem')\n"                       \
    "if not h[1] then return 'gone' end\n"                                                       \
    "if ended(h[1]) then if h[1] == ARGV[5] and h[2] == ARGV[3] then return 'ok' end "           \
    "return 'ended' end\n"                                                                       \
    "if h[2] ~= ARGV[3] then return 'lost' end\n"                                                \
    "redis.call('DEL', KEYS[2])\n"                                                               \
    "if ARGV[5] == 'release' then "                                                              \
    "redis.call('HSET', KEYS[1], 'state', 'queued', 'owner', '', 'step_done', 0, 'nfe_done', 0) " \
    "redis.call('XADD', KEYS[4], '*', 't', 'requeued') expire_like(KEYS[4], KEYS[1]) "           \
    "redis.call('XCLAIM', KEYS[3], ARGV[1], ARGV[7], 0, ARGV[2], 'IDLE', ARGV[8], 'JUSTID') "    \
    "return 'ok' end\n"                                                                          \
    "if ARGV[5] == 'completed' then local imgs = {} "                                            \
    "for i = 9, #ARGV do imgs[#imgs + 1] = i - 9 imgs[#imgs + 1] = ARGV[i] end "                 \
    "redis.call('HSET', KEYS[5], unpack(imgs)) "                                                 \
    "redis.call('HSET', KEYS[1], 'state', 'completed', 'result', ARGV[6], 't_done', now_ms()) "  \
    "else redis.call('HSET', KEYS[1], 'state', ARGV[5], 'error', ARGV[6], 't_done', now_ms()) end\n" \
    "redis.call('HINCRBY', KEYS[1], 'completions', 1)\n"                                         \
    "drop_entry(KEYS[3], ARGV[1], ARGV[2])\n"                                                    \
    "redis.call('XADD', KEYS[4], '*', 't', ARGV[5])\n"                                           \
    "expire_all(ARGV[4], h[3], KEYS[1], KEYS[4], KEYS[5]) return 'ok'\n"

/* CANCEL: KEYS record, lease, queue, events, cancels; ARGV group, job_ttl_s, error JSON, id.
 * -> {'ok', record...} | {'ended', record...} | {'gone'} */
#define LUA_CANCEL                                                                               \
    "local h = redis.call('HMGET', KEYS[1], 'state', 'entry', 'idem')\n"                         \
    "if not h[1] then return {'gone'} end\n"                                                     \
    "if ended(h[1]) then return {'ended', redis.call('HGETALL', KEYS[1])} end\n"                 \
    "redis.call('HSET', KEYS[1], 'state', 'cancelled', 'error', ARGV[3], 't_done', now_ms())\n"  \
    "redis.call('DEL', KEYS[2])\n"                                                               \
    "if h[2] then drop_entry(KEYS[3], ARGV[1], h[2]) end\n"                                      \
    "redis.call('XADD', KEYS[4], '*', 't', 'cancelled')\n"                                       \
    "redis.call('XADD', KEYS[5], 'MAXLEN', '~', 10000, '*', 'id', ARGV[4])\n"                    \
    "expire_all(ARGV[2], h[3], KEYS[1], KEYS[4]) return {'ok', redis.call('HGETALL', KEYS[1])}\n"

/* STATS: KEYS queue; ARGV group, forget_ms (> 0: delete consumers idle that long with
 * nothing pending: replicas long gone), self.
 * -> {unfinished, running, oldest_age_ms (-1: none)} */
#define LUA_STATS                                                                                \
    "local len = redis.call('XLEN', KEYS[1]) local pending = 0\n"                                \
    "local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1]) if ok then pending = p[1] end\n" \
    "local age = -1 local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)\n"         \
    "if first[1] then age = now_ms() - tonumber(string.match(first[1][1], '^(%d+)')) end\n"      \
    "if ok and tonumber(ARGV[2]) > 0 then "                                                      \
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do local m = {} "    \
    "for i = 1, #c, 2 do m[c[i]] = c[i + 1] end "                                                \
    "if m['pending'] == 0 and m['idle'] > tonumber(ARGV[2]) and m['name'] ~= ARGV[3] then "      \
    "redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], m['name']) end end end\n"             \
    "return {len, pending, age}\n"

#endif /* SRV_REDIS_SCRIPTS_H */
