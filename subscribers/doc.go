// Package subscribers serves GET /v1/ws: it checks the token, the Origin
// and the query before the upgrade, then runs one reader and one writer per
// WebSocket connection, with a bounded outgoing queue that never makes the
// fan-out wait. It registers connections with the bridge.Hub and never
// imports ingest or a broker.
package subscribers
