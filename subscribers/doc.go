// Package subscribers serves GET /v1/ws: it checks the token, the Origin
// and the query before the upgrade, then registers each WebSocket
// connection with the bridge.Hub as its Sink. It never imports ingest or a
// broker.
//
// An idle connection costs no goroutine. Its reader (conn.go), which also
// runs the client operations (ops.go), parks the connection when the client
// has nothing more to read and returns; the poller (poll_linux.go, one
// epoll instance the runtime's netpoller waits on) starts a new reader when
// the socket is readable, and the connection's ping timer, its close and
// the close handshake wake one too (wire.go, park and wake). The server's
// pings are answered by pongs that the reader reads itself (readControl):
// gorilla would read one inside ReadMessage and then wait deep in its read
// for the next message. Where there is no epoll (or the socket is TLS) the
// reader waits on the socket a few frames deep instead (awaitFrame), not
// inside gorilla, so its stack stays at the 2 KiB minimum. The upgrade's
// handler goroutine does the connection's setup and its subscription (the
// Head call, a replay) before it parks it. Server frames go through the
// connection's writer (writer.go): a bounded queue that never makes the
// fan-out wait, written inline when the socket has room, and by a writer
// goroutine of its own only while the socket is full. wire.go frames and
// writes the bytes itself, under gorilla/websocket's handshake and reader.
//
// The replica's drain state (Options.Drain) refuses upgrades from the
// instant the drain begins; Server.Drain closes the open connections with
// 1001.
package subscribers
