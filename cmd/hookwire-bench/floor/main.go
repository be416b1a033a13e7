// Command floor is a measurement tool of BENCHMARKS.md, never a product: a
// server that does strictly less than hookwire for the same harness, so
// that a target hookwire misses can be shown to be out of reach on the
// machine. It speaks just enough of the contract for the shared harness's
// personal and ingest scenarios (run it with cmd/hookwire-bench/floor.sh):
//
//   - POST /v1/events: checks the one API key, reads the body, decodes it
//     with encoding/json (no strict checks), stores it (FLOOR_REDIS), writes
//     {"type":"event",...} to the sockets of its users from the handler
//     and answers 202;
//   - GET /v1/ws?token=: checks an HS256 JWT, upgrades, sends a welcome.
//
// FLOOR_REDIS chooses the store: "xadd" (default) one go-redis XADD a
// request; "pipeline" the XADDs of concurrent requests share one pipeline
// (a group commit); "none" nothing. FLOOR_READER=1 adds one goroutine that
// reads every entry back with XREAD BLOCK and discards it, as every
// hookwire replica must read its stream. No dedupe, index, history,
// metrics, logs, limits or validation beyond the JSON syntax.
//
// It reads HOOKWIRE_LISTEN (a loopback address), HOOKWIRE_REDIS_URL,
// HOOKWIRE_STREAM, HOOKWIRE_API_KEYS (one key) and HOOKWIRE_JWT_SECRET, as
// the harness sets them for `hookwire serve`.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
)

type sock struct {
	mu sync.Mutex
	ws *websocket.Conn
}

type hub struct {
	mu    sync.RWMutex
	users map[string][]*sock
}

func (h *hub) add(u string, s *sock) {
	h.mu.Lock()
	h.users[u] = append(h.users[u], s)
	h.mu.Unlock()
}

func (h *hub) remove(u string, s *sock) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.users[u]
	for i, x := range l {
		if x == s {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(h.users, u)
	} else {
		h.users[u] = l
	}
}

func (h *hub) deliver(users []string, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, u := range users {
		for _, s := range h.users[u] {
			s.mu.Lock()
			_ = s.ws.WriteMessage(websocket.TextMessage, frame)
			s.mu.Unlock()
		}
	}
}

// store appends one body and returns its entry id.
type store func(ctx context.Context, body []byte) (string, error)

func newStore(rdb *redis.Client, stream, mode string) (store, error) {
	switch mode {
	case "none":
		return func(context.Context, []byte) (string, error) { return "0-1", nil }, nil
	case "", "xadd":
		return func(ctx context.Context, body []byte) (string, error) {
			return rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"e", body}}).Result()
		}, nil
	case "pipeline":
		return pipelined(rdb, stream), nil
	}
	return nil, fmt.Errorf("FLOOR_REDIS=%q: want xadd, pipeline or none", mode)
}

type job struct {
	body []byte
	done chan result
}

type result struct {
	id  string
	err error
}

// pipelined is a group commit: one goroutine sends whatever queued while
// its last round trip ran, up to 200 XADDs, in one pipeline.
func pipelined(rdb *redis.Client, stream string) store {
	q := make(chan job, 4096)
	go func() {
		var jobs []job
		cmds := make([]*redis.StringCmd, 0, 200)
		for j := range q {
			jobs = append(jobs[:0], j)
		more:
			for len(jobs) < 200 {
				select {
				case j := <-q:
					jobs = append(jobs, j)
				default:
					break more
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			pipe := rdb.Pipeline()
			cmds = cmds[:0]
			for _, j := range jobs {
				cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"e", j.body}}))
			}
			_, _ = pipe.Exec(ctx)
			cancel()
			for i, j := range jobs {
				id, err := cmds[i].Result()
				j.done <- result{id, err}
			}
		}
	}()
	return func(ctx context.Context, body []byte) (string, error) {
		j := job{body, make(chan result, 1)}
		select {
		case q <- j:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		r := <-j.done
		return r.id, r.err
	}
}

// readBack reads every entry of stream and discards it.
func readBack(ctx context.Context, rdb *redis.Client, stream string) {
	last := "$"
	for ctx.Err() == nil {
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, last}, Count: 100, Block: 5 * time.Second}).Result()
		if err != nil {
			if err != redis.Nil {
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		for _, st := range res {
			if n := len(st.Messages); n > 0 {
				last = st.Messages[n-1].ID
			}
		}
	}
}

type event struct {
	Type  string          `json:"type"`
	Users []string        `json:"users"`
	Data  json.RawMessage `json:"data"`
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		log.Fatal("usage: floor serve (configured by HOOKWIRE_* variables, as hookwire serve)")
	}
	addr := os.Getenv("HOOKWIRE_LISTEN")
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("HOOKWIRE_LISTEN=%q: the floor listens on loopback only", addr)
	}
	opt, err := redis.ParseURL(os.Getenv("HOOKWIRE_REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	stream := os.Getenv("HOOKWIRE_STREAM")
	add, err := newStore(rdb, stream, os.Getenv("FLOOR_REDIS"))
	if err != nil {
		log.Fatal(err)
	}
	if os.Getenv("FLOOR_READER") == "1" {
		go readBack(context.Background(), rdb, stream)
	}
	key := []byte(os.Getenv("HOOKWIRE_API_KEYS"))
	secret := []byte(os.Getenv("HOOKWIRE_JWT_SECRET"))
	h := &hub{users: map[string][]*sock{}}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Bearer ") || subtle.ConstantTimeCompare([]byte(auth[7:]), key) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
			http.Error(w, "invalid event", http.StatusBadRequest)
			return
		}
		id, err := add(r.Context(), body)
		if err != nil {
			http.Error(w, "store failed", http.StatusServiceUnavailable)
			return
		}
		if len(ev.Users) > 0 {
			frame, _ := json.Marshal(struct {
				Type  string          `json:"type"`
				ID    string          `json:"id"`
				Event string          `json:"event"`
				Data  json.RawMessage `json:"data"`
			}{"event", id, ev.Type, ev.Data})
			h.deliver(ev.Users, frame)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"` + id + `"}`))
	})
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) {
		tok, err := jwt.Parse(r.URL.Query().Get("token"), func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}))
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		sub, _ := tok.Claims.GetSubject()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s := &sock{ws: ws}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome"}`))
		h.add(sub, s)
		defer h.remove(sub, s)
		defer ws.Close()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
