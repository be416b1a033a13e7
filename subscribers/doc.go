// Package subscribers serves GET /v1/ws: it checks the token, the Origin
// and the query before the upgrade, then registers each WebSocket
// connection with the bridge.Hub as its Sink. It never imports ingest or a
// broker.
//
// An idle connection costs one goroutine, its reader (conn.go), which also
// runs the client operations (ops.go). Between client frames it waits on
// the socket a few frames deep (wire.go, awaitFrame), not inside gorilla,
// so its stack stays at the 2 KiB minimum; the upgrade's handler goroutine
// does the connection's setup and its subscription (the Head call, a
// replay) before it starts the reader. Server frames go through the
// connection's writer (writer.go): a bounded queue that never makes the
// fan-out wait, written inline when the socket has room, and by a writer
// goroutine of its own only while the socket is full. wire.go frames and
// writes the bytes itself, under gorilla/websocket's handshake and reader.
//
// The replica's drain state (Options.Drain) refuses upgrades from the
// instant the drain begins; Server.Drain closes the open connections with
// 1001.
package subscribers
