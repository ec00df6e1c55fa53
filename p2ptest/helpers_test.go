package p2ptest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// makeMsg returns a self-checking message of size bytes (at least 48): sender (8 bytes), seq
// (8 bytes), a payload derived from both, and the SHA-256 of everything before it (32 bytes).
func makeMsg(sender int, seq uint64, size int) []byte {
	size = max(size, 48)
	m := make([]byte, size)
	binary.BigEndian.PutUint64(m[0:], uint64(sender))
	binary.BigEndian.PutUint64(m[8:], seq)
	for i := 16; i < size-32; i++ {
		m[i] = byte(uint64(i)*31 + seq + uint64(sender))
	}
	sum := sha256.Sum256(m[:size-32])
	copy(m[size-32:], sum[:])
	return m
}

// checkMsg reports whether m is exactly a message makeMsg produced.
func checkMsg(m []byte) bool {
	if len(m) < 48 {
		return false
	}
	sender, seq := binary.BigEndian.Uint64(m[0:]), binary.BigEndian.Uint64(m[8:])
	return bytes.Equal(m, makeMsg(int(sender), seq, len(m)))
}

// msgID returns the sender and sequence number of a message made by makeMsg.
func msgID(m []byte) (sender int, seq uint64) {
	return int(binary.BigEndian.Uint64(m[0:])), binary.BigEndian.Uint64(m[8:])
}
