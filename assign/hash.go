package assign

// Sticky scores are rendezvous (highest random weight) hashes. They must be
// identical on every leader and every build, so they use FNV-1a (64-bit)
// with its standard constants and no seed, followed by a fixed avalanche
// step, rather than hash/maphash, whose seeds are random per process.
//
// The score of (session, node) is mix(FNV-1a(nodeID || 0x00 || session)).
// The FNV state after the node ID and separator is computed once per node
// when a view is installed, so scoring a node costs eight multiply-xor steps
// and the mixer.

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// hashNodeID returns the FNV-1a state after the node ID and a zero separator.
func hashNodeID(id string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime64
	}
	h *= fnvPrime64 // the zero separator byte (its xor step is a no-op)
	return h
}

// stickyScore continues the node's FNV-1a state over the session ID and
// mixes the result. FNV-1a alone leaves the high bits poorly mixed for
// inputs that differ only in their last bytes, which would skew the argmax.
func stickyScore(nodeState uint64, s SessionID) uint64 {
	h := nodeState
	for _, b := range s {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	// The 64-bit finalizer from MurmurHash3.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// StickyScore returns the rendezvous score of a session on a node. The
// Sticky policy sends a session to the eligible node with the highest score;
// ties, which are astronomically rare, go to the node whose ID sorts first.
// It is exported so tools can explain where a session would go.
func StickyScore(s SessionID, nodeID string) uint64 {
	return stickyScore(hashNodeID(nodeID), s)
}
