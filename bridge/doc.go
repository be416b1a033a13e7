// Package bridge is the core of hookwire: events, cursors, routing and the
// fan-out Hub, and the Stream interface the Hub consumes.
//
// It knows nothing about HTTP, WebSocket, JWT or Redis: handlers turn requests
// into bridge calls, and adapters (bridge/redisstream, bridge/memstream)
// implement Stream. A test fails on any forbidden import.
package bridge
