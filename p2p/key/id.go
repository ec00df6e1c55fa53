package key

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// IDByteLength is the length in bytes of a decoded ID: SHA-256 truncated to
// 20 bytes (CometBFT crypto.AddressSize). Its textual form is twice as long.
const IDByteLength = 20

// ErrInvalidID is wrapped by every error that reports a malformed ID, from
// ParseID and ID.Validate. Callers should test for it with errors.Is.
var ErrInvalidID = errors.New("key: invalid node ID")

// ID is a node ID: 40 lower-case hexadecimal characters encoding
// SHA-256(ed25519 public key)[:20] (docs/WIRE.md §1). IDs are compared as strings,
// so only the lower-case form is valid; use ParseID to normalise input. The
// zero value "" is not a valid ID.
type ID string

// ParseID parses a textual node ID. Like CometBFT's validateID it accepts
// upper-case hex digits, but it returns the ID in lower case so that string
// comparison with authenticated IDs works (docs/WIRE.md §1, "Pitfall"). It returns
// an error wrapping ErrInvalidID if s is empty, is not hex or does not decode to
// IDByteLength bytes.
func ParseID(s string) (ID, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidID)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidID, s, err)
	}
	if len(b) != IDByteLength {
		return "", fmt.Errorf("%w: %q: invalid hex length - got %d, expected %d", ErrInvalidID, s, len(b), IDByteLength)
	}
	return ID(strings.ToLower(s)), nil
}

// Validate reports whether id is already in canonical form: exactly
// 2*IDByteLength lower-case hex characters. It returns an error wrapping
// ErrInvalidID otherwise (upper-case digits included; use ParseID to
// normalise).
func (id ID) Validate() error {
	if len(id) != 2*IDByteLength {
		return fmt.Errorf("%w: %q: got %d characters, expected %d", ErrInvalidID, string(id), len(id), 2*IDByteLength)
	}
	for i := 0; i < len(id); i++ {
		if !lowerHex[id[i]] {
			return fmt.Errorf("%w: %q: character %d is not a lower-case hex digit", ErrInvalidID, string(id), i)
		}
	}
	return nil
}

// lowerHex reports for each byte whether it is a lower-case hex digit (one load per
// character in Validate, which the address book calls for every address it is sent).
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// String returns the ID as a plain string.
func (id ID) String() string { return string(id) }

// LogValue implements slog.LogValuer: an ID logs as its string.
func (id ID) LogValue() slog.Value { return slog.StringValue(string(id)) }

// PubKeyToID returns the ID of an Ed25519 public key:
// lowercase_hex(SHA-256(pub)[:20]). pub must be ed25519.PublicKeySize (32)
// bytes; the caller checks. PubKeyToID does not panic on other lengths (unlike
// CometBFT's Address), it hashes whatever bytes it is given.
func PubKeyToID(pub ed25519.PublicKey) ID {
	sum := sha256.Sum256(pub)
	return ID(hex.EncodeToString(sum[:IDByteLength]))
}
