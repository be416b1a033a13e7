package bridge

import (
	"context"
	"errors"
)

// Errors a Stream returns. Callers test them with errors.Is.
var (
	// ErrUnavailable means the broker cannot be reached; the caller may
	// retry later. Nothing was appended.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrHistoryExpired means the history no longer reaches back to the
	// requested cursor, or the cursor belongs to an older epoch: the client
	// must reload its state.
	ErrHistoryExpired = errors.New("history expired")
)

// Stream is the broker the Hub and the ingest API consume: an append-only,
// replicated log of events that every replica reads in full.
// bridge/redisstream and bridge/memstream implement it.
type Stream interface {
	// Append durably appends evs in order and returns one result per
	// event. An event whose ID was already accepted within the dedupe
	// window is not appended again: its result has Duplicate set and the
	// original cursor. Append fills each appended event's Cursor and Time.
	// The error is for the call as a whole (ErrUnavailable): then no
	// result may be relied on.
	Append(ctx context.Context, evs []*Event) ([]AppendResult, error)

	// Tail calls fn with every event appended after the call began, in
	// cursor order, in batches, until ctx is cancelled. Its first call of
	// fn is an empty batch, made once Tail is positioned: every event
	// appended after that call began is delivered, so a caller that must
	// not miss events (the hub, before it lets subscribers in) waits for
	// it. It rides out broker
	// outages, continuing from its own position. When the broker's history
	// was lost (a new epoch), fn gets a batch with Reset set before any
	// event of the new epoch. fn runs on Tail's goroutine and must not
	// block. Tail returns ctx.Err() when ctx is cancelled.
	Tail(ctx context.Context, fn func(Batch)) error

	// History returns, in cursor order, up to q.Limit retained events
	// after q.Since that are addressed to q.User or published on one of
	// q.Channels. Its cost is bounded by those events, not by all traffic.
	// It returns ErrHistoryExpired when events after q.Since may be gone.
	History(ctx context.Context, q HistoryQuery) ([]*Event, error)
}

// AppendResult is the outcome of appending one event.
type AppendResult struct {
	Cursor    Cursor
	Duplicate bool
}

// A Batch is what Tail hands to its callback.
type Batch struct {
	// Reset reports that the broker lost history before Events: events
	// accepted before it may never be delivered.
	Reset  bool
	Events []*Event
}

// HistoryQuery selects the events of one resume.
type HistoryQuery struct {
	Since    Cursor // required, non-zero
	User     string
	Channels []string
	Limit    int
}
