package redisstream

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookwire/hookwire/bridge"
	"github.com/hookwire/hookwire/bridge/streamtest"
	"github.com/hookwire/hookwire/internal/redistest"
)

// TestSplitEvent: an event to users of two partitions is one copy per
// partition, each with its users, each delivered once; a repeat is a
// duplicate; after a partial failure (one copy's record gone, as if its
// partition had failed) the retry appends only the missing copy and is
// not answered as a duplicate.
func TestSplitEvent(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{Partitions: 4, ReadBlock: 300 * time.Millisecond})
	var u1, u2 string
	for i := 0; u2 == ""; i++ {
		u := fmt.Sprintf("user%d", i)
		switch {
		case u1 == "":
			u1 = u
		case s.PartitionOf(u, "") != s.PartitionOf(u1, ""):
			u2 = u
		}
	}
	r := streamtest.StartTail(t, s)
	ev := func() *bridge.Event { return &bridge.Event{ID: "split", Type: "t", Users: []string{u1, u2, u1}} }
	first := streamtest.Append(t, s, ev())[0]
	if first.Duplicate {
		t.Fatal("first append is a duplicate")
	}
	if again := streamtest.Append(t, s, ev())[0]; !again.Duplicate {
		t.Error("repeat not a duplicate")
	}
	// One copy's record lost: the retry appends that copy only.
	if err := rdb.Del(t.Context(), s.parts[s.PartitionOf(u2, "")].dedupeKey("split")).Err(); err != nil {
		t.Fatal(err)
	}
	if retry := streamtest.Append(t, s, ev())[0]; retry.Duplicate {
		t.Error("a retry that appended a missing copy answered as a duplicate")
	}
	streamtest.Append(t, s, &bridge.Event{ID: "end", Type: "t", Users: []string{u1}}, &bridge.Event{ID: "end2", Type: "t", Users: []string{u2}})
	r.WaitIDs(t, 5*time.Second, "end", "end2")
	per := map[string]int{}
	for _, e := range r.Events() {
		if e.ID != "split" {
			continue
		}
		if len(e.Users) != 1 {
			t.Errorf("copy with users %q, want one partition's", e.Users)
		}
		for _, u := range e.Users {
			per[u]++
		}
	}
	if per[u1] != 1 || per[u2] != 2 {
		t.Errorf("copies delivered per user = %v, want %s once and %s twice (first, and the retry's)", per, u1, u2)
	}
	// The first append's cursor resumes both users: u2 has the retry's
	// copy after it (and "end2"), u1 "end".
	for u, want := range map[string]int{u1: 1, u2: 2} {
		got, err := s.History(t.Context(), bridge.HistoryQuery{Since: first.Cursor, User: u, Limit: 10})
		if err != nil || len(got) != want {
			t.Errorf("History of %s since the first append = %d events, %v; want %d", u, len(got), err, want)
			for _, e := range got {
				t.Logf("%s %v %+v", e.ID, e.Users, e.Cursor.Positions())
			}
			t.Logf("since %+v part %d", first.Cursor.Positions(), first.Cursor.Part())
		}
	}
}

// TestStaleIndex: a user's index left by an older epoch whose entries are
// after the new ones (the clock behind after Redis lost its data) is
// started again, so the list stays sorted and a resume finds the new
// events.
func TestStaleIndex(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, Options{})
	key := s.parts[0].userKey("u")
	future := member(bridge.PartPos{MS: 9_999_999_999_999, Seq: 0})
	if err := rdb.RPush(t.Context(), key, future).Err(); err != nil {
		t.Fatal(err)
	}
	since, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Append(t, s, &bridge.Event{ID: "s1", Type: "t", Users: []string{"u"}}, &bridge.Event{ID: "s2", Type: "t", Users: []string{"u"}})
	if got := rdb.LRange(t.Context(), key, 0, -1).Val(); len(got) != 2 || got[0] == future {
		t.Errorf("index = %q, want the two new entries only", got)
	}
	got, err := s.History(t.Context(), bridge.HistoryQuery{Since: since, User: "u", Limit: 10})
	if err != nil || len(got) != 2 || got[0].ID != "s1" || got[1].ID != "s2" {
		t.Errorf("History = %v, %v; want s1 s2", got, err)
	}
}
