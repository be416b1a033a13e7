// Package bridge is the core of hookwire: events, cursors, routing and the
// fan-out Hub, and the Stream interface the Hub consumes.
//
// An Event is read-only once a Stream has filled its Cursor and Time: the
// fan-out, every replay and every connection share one *Event. What one
// delivery knows about the event (live or replayed, its trace) travels
// beside it, in the Delivery a Sink receives.
//
// The Hub indexes Subscriptions by user and by channel; Publish routes each
// event to its recipients without blocking on any of them, and Subscribe
// and Subscription.Join replay history, then hand over to live delivery
// with no gap and no repeat.
//
// It knows nothing about HTTP, WebSocket, JWT or Redis: handlers turn requests
// into bridge calls, and adapters (bridge/redisstream, bridge/memstream)
// implement Stream. A test fails on any forbidden import.
package bridge
