package redisstream

import "github.com/redis/go-redis/v9"

// appendScript appends one event. It returns {0, cursor} for a new event,
// {1, cursor} for a duplicate of an event accepted within the dedupe TTL.
//
// KEYS[1] events stream, KEYS[2] meta hash, KEYS[3] dedupe key,
// KEYS[4..] index streams (distinct).
// ARGV[1] epoch to create when meta has none, ARGV[2] HistoryTTL in ms,
// ARGV[3] DedupeTTL in ms, ARGV[4..] entry field/value pairs without e.
//
// Redis 7 replicates a script's effects, not the script, so calling TIME
// before writing is allowed and replicas get the same IDs.
const appendSrc = `
local cur = redis.call('GET', KEYS[3])
if cur then return {1, cur} end
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  -- New epoch: nothing the stream holds can be resumed any more.
  epoch = ARGV[1]
  redis.call('HSET', KEYS[2], 'e', epoch)
  redis.call('UNLINK', KEYS[1])
end
local t = redis.call('TIME')
local minms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2])
if minms < 0 then minms = 0 end
local minid = string.format('%.0f', minms) .. '-0'
-- w is the newest entry the trim below may remove (from the stream and,
-- with the same threshold, its indexes): a resume from before it may have
-- missed events; from it or after, nothing was trimmed.
-- XREVRANGE below the first entry scans the whole stream (Redis 7.0), so
-- look only when the oldest entry is due for trimming.
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first > 0 and tonumber(string.match(first[1][1], '^(%d+)')) < minms then
  local old = redis.call('XREVRANGE', KEYS[1], '(' .. minid, '-', 'COUNT', 1)
  if #old > 0 then
    redis.call('HSET', KEYS[2], 'w', old[1][1])
  end
end
local args = {'XADD', KEYS[1], 'MINID', '~', minid, '*', 'e', epoch}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
for i = 4, #KEYS do
  local r = redis.pcall('XADD', KEYS[i], 'MINID', '~', minid, id, 'o', '')
  if type(r) == 'table' and r.err then
    -- An index left by an older epoch can end after id: it holds
    -- nothing of this epoch, so start it again.
    redis.call('DEL', KEYS[i])
    redis.call('XADD', KEYS[i], 'MINID', '~', minid, id, 'o', '')
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
local cursor = epoch .. '-' .. id
redis.call('SET', KEYS[3], cursor, 'PX', ARGV[3])
return {0, cursor}
`

// headSrc returns {epoch, last entry ID or "0-0"}, creating the epoch (and
// dropping the global stream) when meta has none, as appendSrc does.
//
// KEYS[1] events stream, KEYS[2] meta hash. ARGV[1] epoch to create.
const headSrc = `
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[2], 'e', epoch)
  redis.call('UNLINK', KEYS[1])
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 then return {epoch, '0-0'} end
return {epoch, last[1][1]}
`

// scripts are immutable after construction; each Stream gets its own so
// that no package-level state exists.
type scripts struct {
	append *redis.Script
	head   *redis.Script
}

func newScripts() scripts {
	return scripts{append: redis.NewScript(appendSrc), head: redis.NewScript(headSrc)}
}
