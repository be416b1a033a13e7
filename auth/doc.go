// Package auth decides who may talk to hookwire. It verifies subscriber JWTs
// (HMAC secrets, PEM public keys and a JWKS endpoint, with the key chosen by
// the token's algorithm so that a key never serves an algorithm of another
// family), publisher API keys (named, optionally scoped, reloadable without a
// restart through a KeyRing) and Standard Webhooks signatures, and turns them
// into Claims, Publisher values and webhook ids.
//
// Errors wrap ErrInvalidToken or ErrInvalidSignature and their text is safe to
// show the client: it never contains a token, key or secret. The package logs
// nothing; background failures go to callbacks the caller supplies.
//
// auth imports nothing else of hookwire, nor Echo or gorilla.
package auth
