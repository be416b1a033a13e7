package reload

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu      sync.Mutex
			content = "good 1" // the file
			readErr error
			current = "good 1" // what is in use
			loads   int
			reports []error
		)
		p := Poller{
			Digest: func() ([sha256.Size]byte, error) {
				mu.Lock()
				defer mu.Unlock()
				if readErr != nil {
					return [sha256.Size]byte{}, readErr
				}
				return sha256.Sum256([]byte(content)), nil
			},
			Current: func(sum [sha256.Size]byte) bool {
				mu.Lock()
				defer mu.Unlock()
				return sum == sha256.Sum256([]byte(current))
			},
			Load: func() error {
				mu.Lock()
				defer mu.Unlock()
				loads++
				if strings.HasPrefix(content, "bad") {
					return errors.New("bad content")
				}
				current = content
				return nil
			},
			Report: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				reports = append(reports, err)
			},
		}
		set := func(c string, err error) {
			mu.Lock()
			defer mu.Unlock()
			content, readErr = c, err
		}
		take := func() (int, []error, string) {
			mu.Lock()
			defer mu.Unlock()
			n, r, c := loads, reports, current
			loads, reports = 0, nil
			return n, r, c
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Poll(ctx, time.Second, p)
		}()
		ticks := func(n int) {
			for range n {
				time.Sleep(time.Second)
				synctest.Wait()
			}
		}
		synctest.Wait()
		ticks(2)
		if n, r, _ := take(); n != 0 || len(r) != 0 {
			t.Fatalf("unchanged content: %d loads, reports %v", n, r)
		}

		set("bad 1", nil)
		ticks(3)
		if n, r, c := take(); n != 1 || len(r) != 1 || r[0] == nil || c != "good 1" {
			t.Fatalf("bad content: %d loads, reports %v, current %q; want one load, one error, the old kept", n, r, c)
		}

		unreadable := errors.New("unreadable")
		set("bad 1", unreadable)
		ticks(3)
		if n, r, _ := take(); n != 0 || len(r) != 1 || !errors.Is(r[0], unreadable) {
			t.Fatalf("read error: %d loads, reports %v; want one report", n, r)
		}

		set("good 2", nil)
		ticks(1)
		if n, r, c := take(); n != 1 || len(r) != 1 || r[0] != nil || c != "good 2" {
			t.Fatalf("change: %d loads, reports %v, current %q; want it applied", n, r, c)
		}
		ticks(2)
		if n, r, _ := take(); n != 0 || len(r) != 0 {
			t.Fatalf("after the change: %d loads, reports %v", n, r)
		}

		cancel()
		<-done
	})
}
