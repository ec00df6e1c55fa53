package netaddr

import (
	"context"
	"testing"
)

// FuzzParse checks that ParseContext never panics and that a parsed address
// prints (String) to a form that parses back to an Equal address. Host names
// are looked up under an already-cancelled ctx, so the fuzzer never waits on
// DNS.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp://" + id + "@127.0.0.1:26656",
		id + "@[::1]:1",
		id + "@[::ffff:1.2.3.4]:80",
		id + "@host.invalid:80",
		"A50BF51D1E331C65E9F9F895CFE1825A290EDF48@0.0.0.0:65535",
		id + "@1.2.3.4:65536",
		"a://b://c@d:e",
		"@:",
		id + "@[fe80::1%eth0]:1",
	} {
		f.Add(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, s string) {
		na, err := ParseContext(ctx, s)
		if err != nil {
			return
		}
		if err := na.ID.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned a non-canonical ID: %v", s, err)
		}
		if na.IP.Is4In6() || na.IP.Zone() != "" || !na.IP.IsValid() {
			t.Fatalf("Parse(%q) returned IP %v", s, na.IP)
		}
		str := na.String()
		back, err := ParseContext(ctx, str)
		if err != nil {
			t.Fatalf("Parse(%q) = %v, but Parse(String() = %q) failed: %v", s, na, str, err)
		}
		if !back.Equal(na) {
			t.Fatalf("Parse(%q) = %v, reparsed %v", s, na, back)
		}
		// The PEX wire form round-trips too.
		if pb, err := FromProto(na.ToProto()); err != nil || !pb.Equal(na) {
			t.Fatalf("proto round trip of %v = %v, %v", na, pb, err)
		}
		_ = na.Valid()
		_ = na.Routable()
		_ = na.GroupKey(true)
		_ = na.GroupKey(false)
	})
}
