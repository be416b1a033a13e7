// Package redisstream is the bridge.Stream of a cluster of hookwire
// replicas, on Redis Streams (Redis 7.0 or later).
//
// # Partitions
//
// Events are spread over Options.Partitions partitions (HOOKWIRE_PARTITIONS;
// Open defaults to 1 on one Redis and 16 on a Redis Cluster, which it
// detects with INFO cluster). Each partition is the layout below under its
// own hash tag T: with one partition T is {P} (the keys of a bridge
// without partitions, so their cursors stay valid); with n it is {P.i} (or
// {P.i.k}, k chosen so that partition i's slot lies in the i-th n-th of the
// slots: the partitions spread evenly over the primaries). Every script
// touches one partition: one slot. The count is recorded in {P}:partitions;
// Open refuses another (ErrPartitions).
//
// An event goes to its users' partitions (FNV-1a of "u:"+user mod n), once
// per partition touched, each copy holding that partition's users, with
// its own dedupe record there; an event without users goes to its
// channel's partition ("c:"+channel). So a user's events, with or without
// a channel, are in one partition, in acceptance order, and so are a
// channel's broadcasts. An Append result is a duplicate only when every
// copy was; a retry after a partial failure (503) appends the missing
// copies. A retried id with addressing of another partition is not
// recognised (CONTRACT.md §4: the record lives in the event's partition).
//
// Every replica reads every partition with its own blocking XREAD and
// backoff (a partition on a node that is down stalls no other) and merges
// them into one sequence; each event gets a vector cursor (bridge.Vector)
// of the positions of every partition up to it, so one cursor resumes a
// connection's whole view. History reads, per partition the query
// touches, the user's and the channels' indexes in one script call.
//
// # Layout
//
// With the hash tag T of a partition (see above; {P} with one partition,
// P being Options.Prefix, HOOKWIRE_STREAM):
//
//	T:events         the stream every replica tails with XREAD; auto IDs.
//	                 Fields: e epoch, i event id, t type, u users joined
//	                 by "\n", c channel, s CloudEvents source, d data,
//	                 tp/ts traceparent and tracestate, x-<key> any other
//	                 trace field.
//	T:meta           hash; field e is the current epoch, field w the newest
//	                 entry ID the retention may have trimmed, field n (in
//	                 ms) up to which threshold w needs no check. No expiry.
//	T:u:<user>       index of the events addressed to user (with or
//	                 without a channel): a list, one member per event
//	                 encoding its entry ID so that the members' byte order
//	                 is the IDs' order, appended in ID order, so sorted
//	                 (see appendSrc). About 150 bytes with one entry, 10 to
//	                 15 bytes an entry when long.
//	T:c:<channel>    index of the events published on channel without
//	                 users. An event with users and a channel is indexed
//	                 under its users only: it reaches nobody else.
//	T:id:<id>        dedupe key of event id; value: its cursor. PX DedupeTTL.
//	                 Not written for ids the server generated
//	                 (Event.GeneratedID, set by Event.AssignID): no client
//	                 can repeat them, and the key cost Redis 120 bytes an
//	                 event. A client's id is remembered whatever its shape.
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
// Why per-target indexes: a client resuming after a cursor needs its own
// events, not everybody's. A binary search and LRANGE on T:u:<user> and
// T:c:<channel> cost the number of those events (and a logarithm),
// whatever the total traffic, and the events are then fetched by ID from
// T:events. The global stream is never scanned by History. Lists rather
// than streams: a stream costs 4.6 KB even with one entry, and an index per
// user not seen in an hour is the common case (a balance update to one
// user). Lists rather than sorted sets: past 128 members a sorted set is a
// skiplist, 236 bytes an event and 5 µs of Redis CPU an insert for 1,000
// users with 200 events each, against 115 bytes and an O(1) append.
//
// Why an epoch: entry IDs are wall-clock based and restart from the clock
// when Redis lost its data, so an ID alone cannot prove that nothing was
// lost after it. The epoch is a random id created when T:meta is missing
// (a new or emptied Redis), carried in every cursor and every entry. A
// cursor of another epoch is refused with bridge.ErrHistoryExpired, and a
// tail that sees the epoch change delivers a Reset batch and re-reads the
// new stream from its start. Creating an epoch also drops T:events, so
// the global stream only ever holds entries of the current epoch.
//
// Limits: the epoch does not change on failover to a replica that lacked
// the newest writes but had T:meta; events acknowledged only by the old
// primary are then lost without a Reset (Redis replication is
// asynchronous).
//
// It imports bridge and go-redis; it must not import HTTP or WebSocket
// packages.
package redisstream
