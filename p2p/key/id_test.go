package key

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

const goodID = "a50bf51d1e331c65e9f9f895cfe1825a290edf48"

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want ID
		ok   bool
	}{
		{goodID, goodID, true},
		{strings.ToUpper(goodID), goodID, true}, // hex.DecodeString accepts upper case; we normalise
		{"A50bf51d1e331c65e9f9f895cfe1825a290EDF48", goodID, true},
		{"", "", false},
		{goodID[:38], "", false},          // 19 bytes
		{goodID + "00", "", false},        // 21 bytes
		{goodID[:39], "", false},          // odd length
		{"g" + goodID[1:], "", false},     // not hex
		{" " + goodID[1:], "", false},     // space
		{goodID[:39] + "\x00", "", false}, // NUL
	}
	for _, tt := range tests {
		got, err := ParseID(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ParseID(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("ParseID(%q) result does not Validate: %v", tt.in, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) = %q, %v; want error wrapping ErrInvalidID", tt.in, got, err)
		}
		if got != "" {
			t.Errorf("ParseID(%q) returned %q with an error", tt.in, got)
		}
	}
}

func TestIDValidate(t *testing.T) {
	if err := ID(goodID).Validate(); err != nil {
		t.Fatalf("Validate(%q) = %v", goodID, err)
	}
	for _, id := range []ID{"", ID(strings.ToUpper(goodID)), ID(goodID[:38]), ID(goodID + "0"), ID("z" + goodID[1:])} {
		if err := id.Validate(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestIDLogValue(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "peer", ID(goodID))
	if !strings.Contains(buf.String(), "peer="+goodID) {
		t.Fatalf("log line %q does not contain the ID", buf.String())
	}
}

// TestPubKeyToIDGolden pins the ID derivation (docs/WIRE.md §1) to values computed
// outside Go: the RFC 8032 §7.1 TEST 1 key pair, and its ID computed with
// Python's hashlib (sha256(pub).hexdigest()[:40]).
func TestPubKeyToIDGolden(t *testing.T) {
	seed := mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	wantPub := mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	const wantID ID = "21fe31dfa154a261626bf854046fd2271b7bed4b"

	k := NodeKey{PrivKey: ed25519.NewKeyFromSeed(seed)}
	if !bytes.Equal(k.PubKey(), wantPub) {
		t.Fatalf("PubKey = %x, want %x (RFC 8032 TEST 1)", k.PubKey(), wantPub)
	}
	if got := PubKeyToID(wantPub); got != wantID {
		t.Fatalf("PubKeyToID = %s, want %s", got, wantID)
	}
	if got := k.ID(); got != wantID {
		t.Fatalf("NodeKey.ID = %s, want %s", got, wantID)
	}
}

// TestPubKeyToIDMatchesSHA256 checks the derivation against an independent
// computation for many keys.
func TestPubKeyToIDMatchesSHA256(t *testing.T) {
	for i := range 64 {
		seed := bytes.Repeat([]byte{byte(i)}, ed25519.SeedSize)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		sum := sha256.Sum256(pub)
		want := hex.EncodeToString(sum[:])[:40]
		got := PubKeyToID(pub)
		if string(got) != want {
			t.Fatalf("seed %d: PubKeyToID = %s, want %s", i, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
