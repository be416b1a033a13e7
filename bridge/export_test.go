package bridge

// Count returns the number of subscriptions registered with h.
func Count(h *Hub) int { return h.count() }
