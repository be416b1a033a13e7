package auth

import "slices"

// Algorithms returns the alg values v accepts.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }
