package key

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseID: ParseID never panics; it fails only with an error wrapping ErrInvalidID, and what
// it accepts is a canonical ID (Validate passes) equal to the input lower-cased, which parses
// back to itself.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		string(rfc8032ID),
		strings.ToUpper(string(rfc8032ID)),
		"",
		"zz",
		string(rfc8032ID) + "00",
		string(rfc8032ID)[:39],
		"A50BF51D1E331C65E9F9F895CFE1825A290EDF4\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidID) || id != "" {
				t.Fatalf("ParseID(%q) = %q, %v; want \"\" and an error wrapping ErrInvalidID", s, id, err)
			}
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseID(%q) = %q, which does not Validate: %v", s, id, err)
		}
		if string(id) != strings.ToLower(s) {
			t.Fatalf("ParseID(%q) = %q", s, id)
		}
		if back, err := ParseID(string(id)); err != nil || back != id {
			t.Fatalf("ParseID(%q) = %q, %v", id, back, err)
		}
	})
}

// FuzzUnmarshalNodeKey decodes arbitrary node_key.json contents: never a panic, every error
// wraps ErrInvalidKeyFile, an accepted key is valid, and it marshals to bytes that decode to the
// same key (and marshal again to the same bytes).
func FuzzUnmarshalNodeKey(f *testing.F) {
	f.Add([]byte(rfc8032File))
	f.Add([]byte(rfc8032File + "\n"))
	for _, b := range badFiles {
		f.Add([]byte(b.content))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := unmarshalNodeKey(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidKeyFile) || k.PrivKey != nil {
				t.Fatalf("unmarshalNodeKey = %x, %v; want no key and an error wrapping ErrInvalidKeyFile", k.PrivKey, err)
			}
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("accepted an invalid key: %v", err)
		}
		enc, err := k.marshal()
		if err != nil {
			t.Fatalf("marshal of an accepted key: %v", err)
		}
		back, err := unmarshalNodeKey(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !bytes.Equal(back.PrivKey, k.PrivKey) || back.ID() != k.ID() {
			t.Fatalf("round trip changed the key: %x != %x", back.PrivKey, k.PrivKey)
		}
		if enc2, err := back.marshal(); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("second marshal = %s, %v; want %s", enc2, err, enc)
		}
	})
}
