// Package auth verifies who talks to hookwire: publishers by API key (and,
// later, webhook signature), subscribers by JWT. It turns credentials into
// auth.Claims and imports nothing else of hookwire, nor Echo or gorilla.
package auth
