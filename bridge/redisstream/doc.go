// Package redisstream is the bridge.Stream of a cluster of hookwire
// replicas, on Redis Streams (Redis 7.0 or later).
//
// # Layout
//
// With the prefix P (Options.Prefix, HOOKWIRE_STREAM), every key carries
// the hash tag {P}, so one Lua script may touch all of them in Redis
// Cluster:
//
//	{P}:events       the stream every replica tails with XREAD; auto IDs.
//	                 Fields: e epoch, i event id, t type, u users joined
//	                 by "\n", c channel, d data, tp/ts traceparent and
//	                 tracestate, x-<key> any other trace field.
//	{P}:meta         hash; field e is the current epoch, field w the newest
//	                 entry ID the retention may have trimmed, field n (in
//	                 ms) up to which threshold w needs no check. No expiry.
//	{P}:u:<user>     index of the events addressed to user (with or
//	                 without a channel): entries with the same ID as in
//	                 {P}:events and one empty field o.
//	{P}:c:<channel>  index of the events published on channel without
//	                 users. An event with users and a channel is indexed
//	                 under its users only: it reaches nobody else.
//	{P}:id:<id>      dedupe key of event id; value: its cursor. PX DedupeTTL.
//
// Append runs one script call per chunk of up to 200 events (or about
// 1 MiB of fields), every chunk in one pipeline: one round trip, in order.
// Per call, the script reads (or creates) the epoch, the broker's TIME and
// the retention threshold (now - HistoryTTL) once; per event it checks the
// dedupe key (a duplicate, also of an event earlier in the same call,
// answers with the stored cursor), adds the entry and its index entries
// with the same ID, and sets the dedupe key; each index written gets one
// PEXPIRE per call. A call is atomic. Retention is time-based: one call in
// 16 trims the global stream and the indexes it writes with MINID ~ (an
// approximate trim removes up to 10,000 entries, far more than 16 calls
// add); an index that is not written to expires as a whole after
// HistoryTTL. Whenever the oldest entry is due for trimming, the script
// records in w the newest entry below the threshold (see below), checking
// at most once per millisecond (field n).
//
// The script is run with EVALSHA only (sending its body costs Redis a
// hash of it per call); a NOSCRIPT ran nothing, so that chunk runs again
// with EVAL.
//
// When a resume is refused: a cursor before w may have missed trimmed
// events, and so may one whose next event is older than HistoryTTL (the
// index keys of that event may have expired). Nothing else is refused: the
// head of a stream that has been idle for days stays a valid cursor, since
// nothing after it can have been lost, so a fresh connection can start
// from the head (the welcome frame's cursor) and resume from it any time.
//
// Why per-target index streams: a client resuming after a cursor needs its
// own events, not everybody's. XRANGE on {P}:u:<user> and {P}:c:<channel>
// costs the number of those events, whatever the total traffic, and the
// events are then fetched by ID from {P}:events. The global stream is never
// scanned by History.
//
// Why an epoch: entry IDs are wall-clock based and restart from the clock
// when Redis lost its data, so an ID alone cannot prove that nothing was
// lost after it. The epoch is a random id created when {P}:meta is missing
// (a new or emptied Redis), carried in every cursor and every entry. A
// cursor of another epoch is refused with bridge.ErrHistoryExpired, and a
// tail that sees the epoch change delivers a Reset batch and re-reads the
// new stream from its start. Creating an epoch also drops {P}:events, so
// the global stream only ever holds entries of the current epoch.
//
// Limits: the epoch does not change on failover to a replica that lacked
// the newest writes but had {P}:meta; events acknowledged only by the old
// primary are then lost without a Reset (Redis replication is
// asynchronous).
//
// It imports bridge and go-redis; it must not import HTTP or WebSocket
// packages.
package redisstream
