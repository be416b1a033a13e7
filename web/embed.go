// Package web holds hookwire's browser side: the demo page (index.html,
// demo.js) and the dependency-free browser client (hookwire.js). It imports
// no other hookwire package; cmd/hookwire decides where and when to serve it.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Assets returns the demo page and the browser client, served by
// `hookwire serve --dev` at `/`: index.html, demo.js and hookwire.js sit at
// the root of the returned file system. It is read-only and safe for
// concurrent use.
func Assets() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is a valid path, embedded above: cannot happen
	}
	return sub
}
