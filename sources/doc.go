// Package sources turns third-party webhooks into hookwire events
// (CONTRACT.md §6). A sources file (YAML, or JSON) lists sources, each with
// its provider's signature scheme and CEL rules; Load validates and
// compiles it whole, a Registry serves the current set and reloads it when
// the file (or a secret file) changes.
//
// The HTTP edge calls, for POST /v1/sources/<name>:
//
//	src, ok := reg.Lookup(name)           // 404 when !ok
//	d, err := src.Verify(ctx, r.Header, body, time.Now())
//	// errors.Is(err, ErrUnverified) → 401; errors.Is(err, ErrBody) → 400
//	// d.Challenge != "" → 200 {"challenge": d.Challenge} (Slack)
//	evs, ruleErrs := src.Events(ctx, d)        // len(evs) == 0 → 200 ignored
//
// and src.DryRun for POST /v1/sources/<name>/test. The raw body is verified
// byte for byte before it is parsed: as JSON, or, when the request's
// Content-Type is application/x-www-form-urlencoded (Slack's slash
// commands and interactivity, GitHub's form content type), as an object
// of the form's fields whose payload field, when it holds a JSON object,
// is that object. Signatures are compared in constant time. Rules are compiled and type-checked once and evaluated with a cost
// limit; they cannot do I/O. A rule that fails on one payload is skipped,
// counted and reported, never a panic.
//
// The package knows nothing of HTTP servers, Echo or the stream.
package sources
