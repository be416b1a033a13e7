package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"
)

// target is the one server a run talks to: a loopback address, pinned at
// start so that no later name resolution can move the load elsewhere.
type target struct {
	base     string // scheme://host:port, as given
	wsURL    string // ws(s)://host:port/v1/ws
	hostport string // host:port as the URL names it
	host     string // Host header: the URL's host[:port]
	hostname string // the URL's host without port, for TLS
	https    bool
	ips      []netip.Addr // every address the host resolved to, all loopback
	cur      atomic.Int32 // index in ips of the address that worked last
	port     string
}

// resolveLoopback accepts u only if its host is, or resolves only to,
// loopback addresses (127.0.0.0/8 or ::1).
func resolveLoopback(ctx context.Context, u *url.URL) (*target, error) {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w: --url %q: give the server's base URL, without a path", errUsage, u.String())
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("refusing %s: cannot resolve %q: %v", u.Host, host, err)
		}
		addrs = ips
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("refusing %s: %q resolves to nothing", u.Host, host)
	}
	for _, a := range addrs {
		if !isLoopback(a) {
			return nil, fmt.Errorf("refusing %s: %s is not a loopback address (127.0.0.0/8 or ::1); hookwire-bench only loads a local server", u.Host, a)
		}
	}
	ws := "ws"
	if u.Scheme == "https" {
		ws = "wss"
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return &target{
		base:     u.Scheme + "://" + u.Host,
		wsURL:    ws + "://" + u.Host + "/v1/ws",
		hostport: net.JoinHostPort(host, port),
		host:     u.Host,
		hostname: host,
		https:    u.Scheme == "https",
		ips:      addrs,
		port:     port,
	}, nil
}

func isLoopback(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		return a.As4()[0] == 127
	}
	return a == netip.IPv6Loopback()
}

// dial connects to the loopback addresses resolved at start, the one that
// worked last first (localhost may be 127.0.0.1 and ::1, and the server
// listen on one only). It refuses any other address, so a redirect or a
// proxy setting cannot send traffic away.
func (t *target) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != t.hostport {
		return nil, fmt.Errorf("hookwire-bench: refusing to dial %s: only %s (loopback) is allowed", addr, t.hostport)
	}
	var d net.Dialer
	first := int(t.cur.Load())
	var err error
	for k := range t.ips {
		i := (first + k) % len(t.ips)
		var c net.Conn
		c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(t.ips[i].String(), t.port))
		if err == nil {
			if i != first {
				t.cur.Store(int32(i))
			}
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}
