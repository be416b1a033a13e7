package subscribers

// The client operations of one connection (CONTRACT.md §3): ping,
// subscribe, unsubscribe, refresh. They run on the connection's reader.

import (
	"context"
	"errors"
	"time"

	"github.com/hookwire/hookwire/bridge"
)

// reply sends a server frame of the connection's own.
func (c *conn) reply(v any) { c.wr.push(out{b: textFrame(encode(v))}, controlFrame) }

func (c *conn) fail(ref string, err error) {
	var ef *clientError
	if !errors.As(err, &ef) {
		ef = &clientError{codeUnavailable, "try again later"}
	}
	c.reply(errorFrame{Type: "error", Code: ef.code, Message: ef.msg, Ref: ref})
}

// handle runs one client op.
func (c *conn) handle(ctx context.Context, b []byte) {
	f, err := parseClientFrame(b)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	switch f.Op {
	case "ping":
		c.reply(pongFrame{Type: "pong", Ref: f.Ref})
	case "unsubscribe":
		if !bridge.ValidChannel(f.Channel) {
			c.fail(f.Ref, &clientError{codeBadRequest, "invalid channel name"})
			return
		}
		c.sub.Leave(f.Channel)
		c.reply(channelFrame{Type: "unsubscribed", Channel: f.Channel, Ref: f.Ref})
	case "subscribe":
		c.subscribe(ctx, f)
	case "refresh":
		c.refresh(ctx, f)
	}
}

// refresh replaces the connection's claims with those of a new token for
// the same user, so the session outlives the first token. Channels the new
// token no longer grants are left, each with an unsubscribed frame.
func (c *conn) refresh(ctx context.Context, f clientFrame) {
	claims, err := c.srv.verifier.RefreshContext(ctx, c.claims, f.Token)
	if err != nil {
		c.srv.metrics.authFailure("refresh")
		c.fail(f.Ref, &clientError{codeBadToken, err.Error()})
		return
	}
	c.claims = claims
	for _, ch := range c.sub.Channels() {
		if !claims.ChannelAllowed(ch) {
			c.sub.Leave(ch)
			c.reply(channelFrame{Type: "unsubscribed", Channel: ch})
		}
	}
	if c.timers.expiry != nil {
		c.timers.expiry.Reset(time.Until(claims.Expiry) + expirySlop)
	}
	c.reply(refreshedFrame{Type: "refreshed", Exp: claims.Expiry.UTC().Format(time.RFC3339), Ref: f.Ref})
}

func (c *conn) subscribe(ctx context.Context, f clientFrame) {
	if err := c.srv.checkChannel(c.claims, f.Channel); err != nil {
		c.fail(f.Ref, err)
		return
	}
	since, err := bridge.ParseCursor(f.Since)
	if err != nil {
		c.fail(f.Ref, &clientError{codeBadRequest, "malformed since cursor"})
		return
	}
	if !c.sub.Subscribed(f.Channel) && c.sub.ChannelCount() >= c.srv.opts.MaxChannels {
		c.fail(f.Ref, &clientError{codeLimit, "too many channels on this connection"})
		return
	}
	ok := channelFrame{Type: "subscribed", Channel: f.Channel, Ref: f.Ref}
	if err := c.sub.Join(ctx, f.Channel, since, func() { c.reply(ok) }); err != nil {
		if !errors.Is(err, errClosing) && ctx.Err() == nil {
			c.log().WarnContext(ctx, "replay failed", "channel", f.Channel, "err", err)
			c.fail(f.Ref, err)
		}
	}
}
