package addrbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// cometExample is docs/WIRE.md §7.4's file from a CometBFT node, with full IDs.
const cometExample = `{
	"key": "c193f25e07441ce38c44bc2b",
	"addrs": [
		{
			"addr": {"id": "d7de2b2f1e3c4d5e6f708192a3b4c5d6e7f8b7db", "ip": "127.0.0.1", "port": 26699},
			"src":  {"id": "d7de2b2f1e3c4d5e6f708192a3b4c5d6e7f8b7db", "ip": "127.0.0.1", "port": 26699},
			"buckets": [7], "attempts": 6, "bucket_type": 1,
			"last_attempt": "2026-11-21T00:07:43.520408857Z",
			"last_success": "0001-01-01T00:00:00Z",
			"last_ban_time": "0001-01-01T00:00:00Z"
		}
	]
}`

func TestLoadCometBFTFile(t *testing.T) {
	a := newBook(t, Config{NonStrict: true}, 20)
	rep, err := a.Load(strings.NewReader(cometExample), t0.Add(365*24*time.Hour))
	if err != nil || rep.Loaded != 1 || rep.Skipped != 0 || rep.KeyIgnored {
		t.Fatalf("Load = %+v, %v", rep, err)
	}
	k := a.ListOfKnownAddresses()[0]
	if a.Key() != "c193f25e07441ce38c44bc2b" || k.Attempts != 6 || k.Buckets[0] != 7 || k.Addr.String() != "d7de2b2f1e3c4d5e6f708192a3b4c5d6e7f8b7db@127.0.0.1:26699" {
		t.Fatalf("loaded %+v key %s", k, a.Key())
	}
	mustInvariants(t, a)
	// Strict mode: the loopback entry is skipped.
	b := newBook(t, Config{}, 20)
	rep, err = b.Load(strings.NewReader(cometExample), t0)
	if err != nil || rep.Loaded != 0 || rep.Reasons[SkipNonRoutable] != 1 {
		t.Fatalf("strict Load = %+v, %v", rep, err)
	}
}

func filledBook(tb testing.TB, seed uint64, n int) *AddrBook {
	tb.Helper()
	return fillBook(newBook(tb, Config{}, seed), n)
}

// fillBook adds routable addresses to a until it holds n, marking some good
// and some attempted.
func fillBook(a *AddrBook, n int) *AddrBook {
	for i := 0; a.Size() < n; i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		_ = a.AddAddress(now, routable(i, i%5000), routable(1<<22+i%300, 5000+i%300))
		switch i % 7 {
		case 0:
			a.MarkGood(now, testID(i))
		case 1:
			a.MarkAttempt(now, routable(i, 0))
		}
	}
	return a
}

func TestSaveLoadRoundTrip(t *testing.T) {
	a := filledBook(t, 21, 3000)
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		t.Fatal(err)
	}
	// CometBFT's format: MarshalIndent with tabs, these keys.
	var generic map[string]any
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "{\n\t\"key\": \""+a.Key()+"\",\n\t\"addrs\": [\n\t\t{\n\t\t\t\"addr\": {\n\t\t\t\t\"id\": ") {
		t.Fatalf("format:\n%.300s", buf.String())
	}
	first := generic["addrs"].([]any)[0].(map[string]any)
	for _, k := range []string{"addr", "src", "buckets", "attempts", "bucket_type", "last_attempt", "last_success", "last_ban_time"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("entry has no %q: %v", k, first)
		}
	}
	b := newBook(t, Config{}, 99) // "restart": other rng, other secret
	rep, err := b.Load(bytes.NewReader(buf.Bytes()), t0.Add(time.Hour))
	if err != nil || rep.Loaded != a.Size() || rep.Skipped != 0 {
		t.Fatalf("Load = %+v, %v (size %d)", rep, err, a.Size())
	}
	mustInvariants(t, b)
	if b.Key() != a.Key() || b.NumOld() != a.NumOld() || b.NumNew() != a.NumNew() {
		t.Fatalf("key/new/old %s/%d/%d vs %s/%d/%d", b.Key(), b.NumNew(), b.NumOld(), a.Key(), a.NumNew(), a.NumOld())
	}
	want, got := a.ListOfKnownAddresses(), b.ListOfKnownAddresses()
	for i := range want {
		w, g := want[i], got[i]
		if w.Addr != g.Addr || w.Src != g.Src || fmt.Sprint(w.Buckets) != fmt.Sprint(g.Buckets) || w.Attempts != g.Attempts ||
			w.BucketType != g.BucketType || !w.LastAttempt.Equal(g.LastAttempt) || !w.LastSuccess.Equal(g.LastSuccess) {
			t.Fatalf("entry %d: %+v != %+v", i, g, w)
		}
	}
	var buf2 bytes.Buffer
	_ = b.Save(&buf2)
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Fatal("Save(Load(Save(a))) != Save(a)")
	}
}

func entryJSON(id, ip string, port int, buckets string, bucketType int) string {
	return fmt.Sprintf(`{"addr":{"id":%q,"ip":%q,"port":%d},"src":{"id":%q,"ip":"9.9.9.9","port":1},`+
		`"buckets":%s,"attempts":1,"bucket_type":%d,"last_attempt":"2026-01-01T00:00:00Z",`+
		`"last_success":"0001-01-01T00:00:00Z","last_ban_time":"0001-01-01T00:00:00Z"}`,
		id, ip, port, string(testID(9999)), buckets, bucketType)
}

// TestLoadSkipsBadEntries covers R-02: each bad entry is skipped and counted,
// the good ones load, nothing panics.
func TestLoadSkipsBadEntries(t *testing.T) {
	good := entryJSON(string(testID(1)), "1.2.3.4", 26656, "[3]", 1)
	tests := []struct {
		name, entry, reason string
	}{
		{"bucket 9999", entryJSON(string(testID(2)), "1.2.3.5", 1, "[9999]", 1), SkipBucketOutOfRange},
		{"old bucket 64", entryJSON(string(testID(2)), "1.2.3.5", 1, "[64]", 2), SkipBucketOutOfRange},
		{"negative bucket", entryJSON(string(testID(2)), "1.2.3.5", 1, "[-1]", 1), SkipBucketOutOfRange},
		{"bucket type 3", entryJSON(string(testID(2)), "1.2.3.5", 1, "[3]", 3), SkipBadBucketType},
		{"bucket type 0", entryJSON(string(testID(2)), "1.2.3.5", 1, "[3]", 0), SkipBadBucketType},
		{"no buckets", entryJSON(string(testID(2)), "1.2.3.5", 1, "[]", 1), SkipBadBuckets},
		{"null buckets", entryJSON(string(testID(2)), "1.2.3.5", 1, "null", 1), SkipBadBuckets},
		{"5 new buckets", entryJSON(string(testID(2)), "1.2.3.5", 1, "[1,2,3,4,5]", 1), SkipBadBuckets},
		{"2 old buckets", entryJSON(string(testID(2)), "1.2.3.5", 1, "[1,2]", 2), SkipBadBuckets},
		{"repeated bucket", entryJSON(string(testID(2)), "1.2.3.5", 1, "[4,4]", 1), SkipBadBuckets},
		{"duplicate ID", entryJSON(string(testID(1)), "1.2.3.5", 1, "[4]", 1), SkipDuplicate},
		{"bad ID", entryJSON("xyz", "1.2.3.5", 1, "[4]", 1), SkipInvalidAddr},
		{"bad IP", entryJSON(string(testID(2)), "1.2.3", 1, "[4]", 1), SkipInvalidAddr},
		{"host name", entryJSON(string(testID(2)), "example.com", 1, "[4]", 1), SkipInvalidAddr},
		{"0.0.0.0", entryJSON(string(testID(2)), "0.0.0.0", 1, "[4]", 1), SkipInvalidAddr},
		{"port 70000", entryJSON(string(testID(2)), "1.2.3.5", 70000, "[4]", 1), SkipInvalidAddr},
		{"loopback", entryJSON(string(testID(2)), "127.0.0.1", 1, "[4]", 1), SkipNonRoutable},
		{"self", entryJSON(string(testID(500)), "1.2.3.5", 1, "[4]", 1), SkipSelf},
		{"private", entryJSON(string(testID(501)), "1.2.3.5", 1, "[4]", 1), SkipPrivate},
		{"port is a string", strings.Replace(entryJSON(string(testID(2)), "1.2.3.5", 1, "[4]", 1), `"port":1`, `"port":"1"`, 1), SkipBadType},
		{"entry is a number", `42`, SkipBadType},
		{"entry is null", `null`, SkipInvalidAddr},
		{"bad time", strings.Replace(entryJSON(string(testID(2)), "1.2.3.5", 1, "[4]", 1), "2026-01-01T00:00:00Z", "yesterday", 1), SkipBadTime},
		{"bad src IP", strings.Replace(entryJSON(string(testID(2)), "1.2.3.5", 1, "[4]", 1), "9.9.9.9", "nope", 1), SkipInvalidSrc},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newBook(t, Config{OurAddrs: []netaddr.NetAddress{v4(500, 8, 8, 8, 8)}, PrivateIDs: []key.ID{testID(501)}}, 22)
			in := `{"key":"00112233445566778899aabb","addrs":[` + good + "," + tc.entry + "," + strings.Replace(good, string(testID(1)), string(testID(3)), 1) + "]}"
			rep, err := a.Load(strings.NewReader(in), t0)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Loaded != 2 || rep.Skipped != 1 || rep.Reasons[tc.reason] != 1 {
				t.Fatalf("report %+v, want 2 loaded and 1 %s", rep, tc.reason)
			}
			mustInvariants(t, a)
		})
	}
}

func TestLoadClampsFutureTimes(t *testing.T) {
	a := newBook(t, Config{}, 23)
	in := `{"key":"k","addrs":[` + strings.Replace(entryJSON(string(testID(1)), "1.2.3.4", 1, "[3]", 1), "2026-01-01T00:00:00Z", "9999-01-01T00:00:00Z", 1) + `]}`
	if _, err := a.Load(strings.NewReader(in), t0); err != nil {
		t.Fatal(err)
	}
	if k := a.ListOfKnownAddresses()[0]; !k.LastAttempt.Equal(t0) {
		t.Fatalf("LastAttempt %v", k.LastAttempt)
	}
}

// TestLoadSaturatesFarTimes: a ban time past 2262 and a last attempt before
// 1677, which the book cannot hold to the nanosecond, load as the nearest
// instants it can hold, and the file it saves then reloads to the same bytes.
func TestLoadSaturatesFarTimes(t *testing.T) {
	e := entryJSON(string(testID(1)), "1.2.3.4", 1, "[3]", 1)
	e = strings.Replace(e, `"last_attempt":"2026-01-01T00:00:00Z"`, `"last_attempt":"1500-06-01T00:00:00+02:00"`, 1)
	e = strings.Replace(e, `"last_ban_time":"0001-01-01T00:00:00Z"`, `"last_ban_time":"9999-01-01T00:00:00Z"`, 1)
	a := newBook(t, Config{}, 24)
	if rep, err := a.Load(strings.NewReader(`{"key":"k","addrs":[`+e+`]}`), t0); err != nil || rep.Loaded != 1 {
		t.Fatalf("Load: %+v, %v", rep, err)
	}
	k := a.ListOfKnownAddresses()[0]
	if !k.LastAttempt.Equal(minStampTime) || !k.LastBanTime.Equal(maxStampTime) || !k.LastSuccess.IsZero() {
		t.Fatalf("times %v, %v, %v; want %v, %v and zero", k.LastAttempt, k.LastBanTime, k.LastSuccess, minStampTime, maxStampTime)
	}
	var s1, s2 bytes.Buffer
	if err := a.Save(&s1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s1.String(), `"last_ban_time": "2262-04-11T23:47:16.854775807Z"`) {
		t.Fatalf("saved:\n%s", s1.String())
	}
	b := newBook(t, Config{}, 25)
	if rep, err := b.Load(bytes.NewReader(s1.Bytes()), t0); err != nil || rep.Loaded != 1 {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if err := b.Save(&s2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.Bytes(), s2.Bytes()) {
		t.Fatalf("round trip differs:\n%s\n%s", s1.Bytes(), s2.Bytes())
	}
}

func TestLoadFullBucket(t *testing.T) {
	var entries []string
	for i := range newBucketSize + 1 { // CometBFT's off-by-one allows 65
		entries = append(entries, entryJSON(string(testID(i)), fmt.Sprintf("1.2.%d.%d", i/250, i%250+1), 1, "[5]", 1))
	}
	a := newBook(t, Config{}, 24)
	rep, err := a.Load(strings.NewReader(`{"key":"k","addrs":[`+strings.Join(entries, ",")+`]}`), t0)
	if err != nil || rep.Loaded != newBucketSize || rep.Reasons[SkipBucketFull] != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	mustInvariants(t, a)
}

// TestLoadCorrupt covers R-01 for Load: every truncation of a valid file,
// and assorted non-books, give ErrCorruptFile and an empty book; no panic.
func TestLoadCorrupt(t *testing.T) {
	var buf bytes.Buffer
	if err := filledBook(t, 25, 40).Save(&buf); err != nil {
		t.Fatal(err)
	}
	valid := buf.Bytes()
	a := newBook(t, Config{}, 26)
	key := a.Key()
	for n := 0; n < len(valid)-1; n += 1 + n/200 {
		_, err := a.Load(bytes.NewReader(valid[:n]), t0)
		if !errors.Is(err, ErrCorruptFile) {
			t.Fatalf("truncated at %d/%d: %v", n, len(valid), err)
		}
		if !a.Empty() || a.Key() != key {
			t.Fatalf("truncated at %d: book not reset (size %d)", n, a.Size())
		}
	}
	for _, in := range []string{"", "   ", "null", "[]", `"x"`, "{", `{"addrs":5}`, `{"addrs":{}}`, `{"key":5,"addrs":[]}`, `{"addrs":[}`, "\x00\xff", `{"addrs":[1,}`} {
		if _, err := a.Load(strings.NewReader(in), t0); !errors.Is(err, ErrCorruptFile) {
			t.Fatalf("Load(%q) = %v", in, err)
		}
	}
	// Unknown fields are skipped, "addrs": null is an empty book.
	for _, in := range []string{`{"addrs":null}`, `{"x":{"y":[1,2,{"z":null}]},"key":"ab","addrs":[]}`, `{}`} {
		if _, err := a.Load(strings.NewReader(in), t0); err != nil {
			t.Fatalf("Load(%q) = %v", in, err)
		}
	}
	// A read error is not "corrupt".
	if _, err := a.Load(io.MultiReader(strings.NewReader(`{"addrs":[`), errReader{}), t0); err == nil || errors.Is(err, ErrCorruptFile) {
		t.Fatalf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// hugeReader streams a book of n entries without holding it in memory. Each Read fills p (so
// that copying the book to a file takes a few large writes, not one per entry), and entries are
// formatted with strconv rather than fmt: with fmt and a write per entry, writing 10^6 entries
// cost about 15 s of CPU under -race.
type hugeReader struct {
	n, i    int    // entries in the book; pieces produced so far (the opening, then one per entry)
	buf     []byte // the unread rest of the current piece
	scratch []byte // the current piece's backing array, reused for the next
}

// entries returns how many entries Read has started to produce.
func (h *hugeReader) entries() int { return max(h.i-1, 0) }

func (h *hugeReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(h.buf) == 0 && !h.next() {
			break
		}
		n := copy(p, h.buf)
		h.buf, p = h.buf[n:], p[n:]
		total += n
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// next formats the next piece into h.buf; false at the end of the book.
func (h *hugeReader) next() bool {
	b := h.scratch[:0]
	switch {
	case h.i == 0:
		b = append(b, `{"key":"00112233445566778899aabb","addrs":[`...)
	case h.i <= h.n:
		i := h.i - 1
		b = append(b, `{"addr":{"id":"`...)
		b = appendHex40(b, i)
		b = append(b, `","ip":"`...)
		b = strconv.AppendUint(b, uint64(publicOctets[i%len(publicOctets)]), 10)
		for _, o := range []byte{byte(i >> 16), byte(i >> 8), byte(i)} {
			b = strconv.AppendUint(append(b, '.'), uint64(o), 10)
		}
		b = append(b, `","port":26656},"src":{"id":"`...)
		b = appendHex40(b, i)
		b = append(b, `","ip":"9.9.9.9","port":1},"buckets":[`...)
		b = strconv.AppendInt(b, int64((i/2)%(newBucketCount>>(2*(i%2)))), 10)
		b = append(b, `],"attempts":0,"bucket_type":`...)
		b = strconv.AppendInt(b, int64(1+i%2), 10)
		b = append(b, `,"last_attempt":"2026-01-01T00:00:00Z","last_success":"0001-01-01T00:00:00Z","last_ban_time":"0001-01-01T00:00:00Z"}`...)
		if h.i == h.n {
			b = append(b, "]}"...)
		} else {
			b = append(b, ',')
		}
	default:
		return false
	}
	h.scratch, h.buf = b, b
	h.i++
	return true
}

// appendHex40 appends i as 40 lower-case hex digits (fmt's %040x).
func appendHex40(b []byte, i int) []byte {
	var d [16]byte
	hx := strconv.AppendUint(d[:0], uint64(i), 16)
	return append(append(b, "0000000000000000000000000000000000000000"[:40-len(hx)]...), hx...)
}

// TestLoadHuge covers R-03: a 10^6-entry book loads in bounded time and
// memory and is trimmed to capacity. Bounded time is checked as bounded work,
// which a loaded machine cannot disturb: Load reads no more than
// maxLoadEntries entries of the 10^6 (plus the decoder's read-ahead of a few;
// counted on the stream) and allocates at most 256 MB; the time is logged.
func TestLoadHuge(t *testing.T) {
	const n = 1_000_000
	check := func(t *testing.T, load func(a *AddrBook) (LoadReport, error)) {
		a := newBook(t, Config{}, 27)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		rep, err := load(a)
		el := time.Since(start)
		runtime.ReadMemStats(&after)
		t.Logf("%v: loaded %d, skipped %d, truncated %v, size %d, %.1f MB allocated", el, rep.Loaded, rep.Skipped, rep.Truncated, a.Size(), float64(after.TotalAlloc-before.TotalAlloc)/1e6)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Truncated || a.Size() > capacity || rep.Loaded+rep.Skipped > maxLoadEntries {
			t.Fatalf("not trimmed: %+v size %d", rep, a.Size())
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
			t.Fatalf("load allocated %d bytes", alloc)
		}
		mustInvariants(t, a)
	}
	t.Run("stream", func(t *testing.T) {
		h := &hugeReader{n: n}
		check(t, func(a *AddrBook) (LoadReport, error) { return a.Load(h, t0) })
		if read := h.entries(); read > maxLoadEntries+100 {
			t.Fatalf("Load read %d entries of %d, want ≤ %d + 100 (read-ahead)", read, n, maxLoadEntries)
		}
	})
	t.Run("file", func(t *testing.T) {
		if testing.Short() {
			t.Skip("writes a ~330 MB file")
		}
		path := filepath.Join(t.TempDir(), "addrbook.json")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, &hugeReader{n: n}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, func(a *AddrBook) (LoadReport, error) {
			f, err := os.Open(path)
			if err != nil {
				return LoadReport{}, err
			}
			defer f.Close()
			return a.Load(f, t0)
		})
	})
	t.Run("one huge value", func(t *testing.T) {
		a := newBook(t, Config{}, 28)
		r := io.MultiReader(strings.NewReader(`{"addrs":[{"addr":{"id":"`), &zeros{n: maxFileBytes + 10})
		if _, err := a.Load(r, t0); !errors.Is(err, ErrCorruptFile) {
			t.Fatalf("huge value: %v", err)
		}
	})
}

type zeros struct{ n int }

// aBlock is what zeros copies from: a byte loop would cost a race check per byte.
var aBlock = bytes.Repeat([]byte{'a'}, 64<<10)

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := min(len(p), z.n)
	for done := 0; done < n; {
		done += copy(p[done:n], aBlock)
	}
	z.n -= n
	return n, nil
}

// repeatReader yields s repeated until n bytes have been read (n a multiple of len(s)).
type repeatReader struct {
	s   string
	n   int
	pos int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.pos >= r.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.pos < r.n {
		p[k] = r.s[r.pos%len(r.s)]
		k++
		r.pos++
	}
	return k, nil
}

// TestLoadHostileShapesBounded: a file made of one entry whose "buckets" holds millions of
// indices, or of an unknown value nested millions of levels deep, or of "addrs" repeated to
// get around the entry cap, costs Load no more memory or work than the documented bounds
// the first entry is skipped as SkipBadBuckets, the second is ErrCorruptFile, the third
// stops at maxLoadEntries entries over all its "addrs" (Truncated).
func TestLoadHostileShapesBounded(t *testing.T) {
	const body = 32 << 20
	measure := func(t *testing.T, r io.Reader) (LoadReport, error) {
		t.Helper()
		a := newBook(t, Config{}, 27)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rep, err := a.Load(r, t0)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%.1f MB allocated; report %+v, err %v", float64(alloc)/1e6, rep, err)
		if alloc > 200<<20 {
			t.Errorf("Load allocated %d bytes for a %d-byte input", alloc, body)
		}
		return rep, err
	}
	id := strings.Repeat("ab", 20)
	t.Run("buckets", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader(`{"addrs":[{"addr":{"id":"`+id+`","ip":"1.2.3.4","port":26656},"bucket_type":1,"buckets":[`),
			&repeatReader{s: "0,", n: body}, strings.NewReader(`0]}]}`))
		rep, err := measure(t, r)
		if err != nil || rep.Reasons[SkipBadBuckets] != 1 || rep.Loaded != 0 {
			t.Errorf("want the entry skipped as %s: %+v, %v", SkipBadBuckets, rep, err)
		}
	})
	t.Run("nesting", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader(`{"x":`), &repeatReader{s: "[", n: body})
		if _, err := measure(t, r); !errors.Is(err, ErrCorruptFile) {
			t.Errorf("err %v, want ErrCorruptFile", err)
		}
	})
	t.Run("repeated addrs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{")
		for k := range 3 {
			if k > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"addrs":[`)
			for i := range maxLoadEntries - 1 {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(`{"addr":{"id":"x"}}`) // invalid: skipped, but examined
			}
			b.WriteString("]")
		}
		b.WriteString("}")
		a := newBook(t, Config{}, 27)
		rep, err := a.Load(strings.NewReader(b.String()), t0)
		if err != nil || !rep.Truncated || rep.Loaded+rep.Skipped > maxLoadEntries {
			t.Errorf("three \"addrs\" of %d entries: %d examined, truncated %v, err %v; want at most %d",
				maxLoadEntries-1, rep.Loaded+rep.Skipped, rep.Truncated, err, maxLoadEntries)
		}
	})
}
