package routing

import "crypto/sha256"

// maxInlineID is the longest message ID an IDKey holds verbatim; longer IDs are hashed.
const maxInlineID = 32

// IDKey is a fixed-size, comparable form of a message ID for use as a map key without
// allocating a string: IDs of up to 32 bytes (the default from‖seqno ID is 28, a SHA-256
// content hash 32) are held verbatim with their length, longer IDs as their SHA-256 with a
// length marker no short ID can have, so two different IDs give the same key only by a SHA-256
// collision. The zero value is the key of the empty ID.
type IDKey struct {
	n uint8
	b [maxInlineID]byte
}

// KeyOf returns the key of the message ID id. It does not retain id.
func KeyOf(id []byte) IDKey {
	var k IDKey
	if len(id) <= maxInlineID {
		k.n = uint8(len(id))
		copy(k.b[:], id)
		return k
	}
	k.n = 0xff
	k.b = sha256.Sum256(id)
	return k
}

// KeyOfString is KeyOf for an ID held as a string.
func KeyOfString(id string) IDKey {
	var k IDKey
	if len(id) <= maxInlineID {
		k.n = uint8(len(id))
		copy(k.b[:], id)
		return k
	}
	k.n = 0xff
	k.b = sha256.Sum256([]byte(id))
	return k
}
