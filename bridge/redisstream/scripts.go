package redisstream

import "github.com/redis/go-redis/v9"

// appendSrc appends a chunk of events (up to 200, see Append), in order, in
// one script call. It returns a flat array with two elements per event: 0
// and the cursor of a new event, or 1 and the stored cursor of a duplicate
// of an event accepted within the dedupe TTL (also of one earlier in the
// same call: its dedupe key is set by then).
//
// KEYS[1] events stream, KEYS[2] meta hash, then for each event its dedupe
// key followed by its index streams (distinct within the event).
// ARGV[1] epoch to create when meta has none, ARGV[2] HistoryTTL in ms,
// ARGV[3] DedupeTTL in ms, ARGV[4] number of events, then for each event:
// a header nkeys * 65536 + nfields (nkeys its index streams, nfields the
// number of its optional fields and values), its id, its type, and those
// nfields optional field/value pairs (u, c, d, trace fields).
//
// Once per call, when the first new (not duplicate) event comes, so that
// a call of duplicates only writes nothing: read the epoch (or create it),
// TIME, the threshold minms (now - HistoryTTL) and the w bookkeeping. Then
// per event: GET its dedupe key (a duplicate answers with the cursor
// stored there), XADD to events, XADD the same ID to each index stream,
// PEXPIRE each index stream (once per call) and SET the dedupe key.
//
// Trimming: one call in 16 (by TIME's microseconds) trims, with MINID ~,
// events on its first XADD and each index stream on its first XADD of the
// call. A MINID costs about as much as the rest of an index XADD, and an
// approximate trim removes up to 10,000 entries (100 nodes) while 16 calls
// add at most 3,200, so trimming keeps up; between trims a stream keeps
// what it would have kept anyway (whole nodes) plus up to 16 calls' worth.
// Index streams also expire as a whole HistoryTTL after their last write.
//
// w is the newest entry a trim may have removed: History refuses cursors
// before it. It is updated whenever the oldest entry is due, with the
// same threshold as the trims, as before batching; meta's n lets a call
// skip the check while its result cannot have changed: n is the threshold
// of the last check that found the oldest entry due, or the oldest entry's
// ms when it was not due. While minms <= n, w already is what the check
// would find: entries are only added at the end, after minms, and removed
// from the start.
// So the check (XRANGE, and XREVRANGE, which walks back through a stream
// node) runs at most once per ms, not once per call.
//
// Redis 7 replicates a script's effects, not the script, so calling TIME
// before writing is allowed and replicas get the same IDs.
//
// An event's fields are passed to XADD with unpack(ARGV, i, j): only that
// event's, never the whole ARGV (Lua's C stack holds 8,000 values).
const appendSrc = `
local events, meta, historyMS, dedupeMS = KEYS[1], KEYS[2], ARGV[2], ARGV[3]
local out, nout = {}, 0
local epoch, minms
local minid -- set when this call trims: in one call in 16
local trimmed = false -- events was trimmed in this call
local written = {} -- index streams added to (and PEXPIREd) in this call
local k, a = 3, 5 -- this event's first KEYS and ARGV index
for _ = 1, tonumber(ARGV[4]) do
  local h = tonumber(ARGV[a])
  local nkeys, nfields = math.floor(h / 65536), h % 65536
  local cur = redis.call('GET', KEYS[k])
  if cur then
    out[nout + 1], out[nout + 2] = 1, cur
  else
    if not epoch then
      local m = redis.call('HMGET', meta, 'e', 'n')
      epoch = m[1]
      if not epoch then
        -- New epoch: nothing the stream holds can be resumed any more.
        epoch = ARGV[1]
        redis.call('HSET', meta, 'e', epoch)
        redis.call('UNLINK', events)
      end
      local t = redis.call('TIME')
      minms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(historyMS)
      if minms < 0 then minms = 0 end
      if tonumber(t[2]) % 16 == 0 then
        minid = string.format('%.0f', minms) .. '-0'
      end
      -- w is the newest entry a trim may remove (from the stream and,
      -- with the same threshold, its indexes): a resume from before it
      -- may have missed events; from it or after, nothing was trimmed.
      local n = tonumber(m[2])
      if not n or minms > n then
        -- XREVRANGE below the first entry scans the whole stream (Redis
        -- 7.0), so look only when the oldest entry is due for trimming.
        local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
        if #first > 0 then
          local firstms = tonumber(string.match(first[1][1], '^(%d+)'))
          if firstms < minms then
            local ms = string.format('%.0f', minms)
            local old = redis.call('XREVRANGE', events, '(' .. ms .. '-0', '-', 'COUNT', 1)
            if #old > 0 then
              redis.call('HSET', meta, 'w', old[1][1], 'n', ms)
            end
          else
            redis.call('HSET', meta, 'n', string.format('%.0f', firstms))
          end
        end
      end
    end
    local id
    if minid and not trimmed then
      trimmed = true
      id = redis.call('XADD', events, 'MINID', '~', minid, '*', 'e', epoch, 'i', ARGV[a + 1], 't', ARGV[a + 2], unpack(ARGV, a + 3, a + 2 + nfields))
    else
      id = redis.call('XADD', events, '*', 'e', epoch, 'i', ARGV[a + 1], 't', ARGV[a + 2], unpack(ARGV, a + 3, a + 2 + nfields))
    end
    for i = k + 1, k + nkeys do
      local key = KEYS[i]
      local r
      if minid and not written[key] then
        r = redis.pcall('XADD', key, 'MINID', '~', minid, id, 'o', '')
      else
        r = redis.pcall('XADD', key, id, 'o', '')
      end
      if type(r) == 'table' and r.err then
        -- An index left by an older epoch can end after id: it holds
        -- nothing of this epoch, so start it again.
        redis.call('DEL', key)
        redis.call('XADD', key, id, 'o', '')
        written[key] = nil
      end
      if not written[key] then
        written[key] = true
        redis.call('PEXPIRE', key, historyMS)
      end
    end
    local cursor = epoch .. '-' .. id
    redis.call('SET', KEYS[k], cursor, 'PX', dedupeMS)
    out[nout + 1], out[nout + 2] = 0, cursor
  end
  nout = nout + 2
  k = k + 1 + nkeys
  a = a + 3 + nfields
end
return out
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
