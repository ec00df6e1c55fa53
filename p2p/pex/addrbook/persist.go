package addrbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"time"
	"unique"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// Load limits (docs/RELIABILITY.md R-03). A book saved by this package or by
// CometBFT (whose buckets hold up to 65) has at most 20,800 entries of at
// most about 600 bytes, so both limits are far above any honest file.
const (
	// maxLoadEntries is the number of entries Load examines; it stops
	// reading after that many (LoadReport.Truncated).
	maxLoadEntries = 2 * capacity
	// maxFileBytes is the most input Load reads; a larger input is
	// ErrCorruptFile unless maxLoadEntries stopped it first. It also bounds
	// the decoder's buffer, hence Load's memory, whatever the input.
	maxFileBytes = 64 << 20
)

// Skip reasons counted in LoadReport.Reasons, one per skipped entry.
const (
	SkipBadType          = "bad_type"            // an entry or field of the wrong JSON type
	SkipInvalidAddr      = "invalid_addr"        // addr: bad ID, IP or port, or addr.Valid() fails
	SkipInvalidSrc       = "invalid_src"         // src: IP not textual or port ≥ 65536
	SkipBadTime          = "bad_time"            // a time that is not RFC 3339
	SkipNonRoutable      = "non_routable"        // strict mode and addr not routable
	SkipPrivate          = "private"             // addr or src has a private ID
	SkipSelf             = "self"                // addr is one of ours
	SkipBanned           = "banned"              // addr's ID is banned at now
	SkipDuplicate        = "duplicate"           // addr's ID already loaded
	SkipBadBucketType    = "bad_bucket_type"     // bucket_type not 1 or 2
	SkipBucketOutOfRange = "bucket_out_of_range" // a bucket index ≥ 256 (new), ≥ 64 (old) or < 0
	SkipBadBuckets       = "bad_buckets"         // 0 or > 4 new buckets, ≠ 1 old bucket, or a repeated index
	SkipBucketFull       = "bucket_full"         // every bucket of the entry already holds 64
)

// LoadReport says what Load did with the entries of a file.
type LoadReport struct {
	// Loaded counts entries put in the book.
	Loaded int
	// Skipped counts entries dropped one by one; Reasons splits them
	// by reason (the Skip* constants). Reasons is nil when nothing was
	// skipped.
	Skipped int
	Reasons map[string]int
	// Truncated is set when Load stopped after examining 40,960 entries
	// (twice the book's capacity) without reading the rest.
	Truncated bool
	// KeyIgnored is set when the file's "key" was missing, empty or longer
	// than 64 bytes, so the book kept its own key.
	KeyIgnored bool
}

func (r *LoadReport) skip(reason string) {
	r.Skipped++
	if r.Reasons == nil {
		r.Reasons = make(map[string]int)
	}
	r.Reasons[reason]++
}

// The addrbook.json format (CometBFT's addrBookJSON and knownAddress, docs/WIRE.md
// §7.4). Fields are decoded loosely (times as strings, port as uint32) so
// that every per-entry problem is an UnmarshalTypeError or a check here,
// never a stream error.
type jsonBook struct {
	Key   string             `json:"key"`
	Addrs []jsonKnownAddress `json:"addrs"`
}

type jsonKnownAddress struct {
	Addr        jsonNetAddress `json:"addr"`
	Src         jsonNetAddress `json:"src"`
	Buckets     jsonBuckets    `json:"buckets"`
	Attempts    int32          `json:"attempts"`
	BucketType  int            `json:"bucket_type"`
	LastAttempt string         `json:"last_attempt"`
	LastSuccess string         `json:"last_success"`
	LastBanTime string         `json:"last_ban_time"`
}

// jsonBuckets is an entry's bucket indices. It decodes at most maxNewBucketsPerAddress+1 of
// them: a longer array, which no book holds, is as invalid as that many (SkipBadBuckets), and a
// hostile one of millions of elements then costs no memory beyond the decoder's buffer.
type jsonBuckets []int

// UnmarshalJSON implements json.Unmarshaler; a value that is not an array of integers is a
// *json.UnmarshalTypeError (the entry is skipped as SkipBadType).
func (b *jsonBuckets) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return &json.UnmarshalTypeError{Value: "non-array", Type: reflect.TypeFor[jsonBuckets](), Field: "buckets"}
	}
	var out []int
	for dec.More() && len(out) <= maxNewBucketsPerAddress {
		var v int
		if err := dec.Decode(&v); err != nil {
			return &json.UnmarshalTypeError{Value: "non-integer", Type: reflect.TypeFor[int](), Field: "buckets"}
		}
		out = append(out, v)
	}
	*b = out
	return nil
}

type jsonNetAddress struct {
	ID   string `json:"id"`
	IP   string `json:"ip"`
	Port uint32 `json:"port"`
}

func toJSONAddr(na netaddr.NetAddress) jsonNetAddress {
	j := jsonNetAddress{ID: string(na.ID), Port: uint32(na.Port)}
	if na.IP.IsValid() {
		j.IP = na.IP.String()
	}
	return j
}

// Save writes the book to w in CometBFT's addrbook.json format:
// json.MarshalIndent with a tab indent of {"key", "addrs": [...]}, one object
// per entry with "addr", "src", "buckets", "attempts", "bucket_type" (1 new,
// 2 old) and RFC 3339 times "last_attempt", "last_success", "last_ban_time".
// Bans are not written (docs/WIRE.md §7.4). The output is deterministic for a
// given book. Times are written in UTC. Save fails only if w does.
func (a *AddrBook) Save(w io.Writer) error {
	jb := jsonBook{Key: a.key, Addrs: make([]jsonKnownAddress, 0, a.Size())}
	for _, ka := range a.entries() {
		bs := make([]int, ka.nBuckets)
		for i, b := range ka.bucketList() {
			bs[i] = int(b)
		}
		jb.Addrs = append(jb.Addrs, jsonKnownAddress{
			Addr:        toJSONAddr(ka.addr),
			Src:         toJSONAddr(ka.src.Value()),
			Buckets:     bs,
			Attempts:    ka.attempts,
			BucketType:  int(ka.bucketType),
			LastAttempt: formatTime(ka.lastAttempt.time()),
			LastSuccess: formatTime(ka.lastSuccess.time()),
			LastBanTime: formatTime(ka.lastBanTime.time()),
		})
	}
	b, err := json.MarshalIndent(jb, "", "\t")
	if err != nil {
		return fmt.Errorf("addrbook: save: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("addrbook: save: %w", err)
	}
	return nil
}

// formatTime writes t as time.Time's JSON does (RFC 3339 with nanoseconds): for
// the book's times (stamps, years 1677-2262) the two agree.
func formatTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// Load replaces the book's entries and key with those read from r, in
// CometBFT's addrbook.json format (see Save); bans, own addresses and private
// IDs are kept. The stored bucket indices are used as they are (docs/WIRE.md §7.4).
//
// r is decoded as a stream, entry by entry, so memory stays bounded whatever
// its size: at most 64 MiB is read, and reading stops after 40,960 entries
// (Truncated), counted over every "addrs" key if the file repeats it; an
// entry's "buckets" is read only as far as its fifth index. Entries that cannot be used are skipped one by one and
// counted in the report: wrong JSON types, invalid IDs or IPs,
// out-of-range bucket indices, unknown bucket types, duplicates, entries that
// AddAddress would refuse now (non-routable in strict mode, private, ours,
// banned) and entries whose buckets are full. Times after now are clamped to
// now, so a file cannot make an entry look recently tried forever.
//
// If r is not an address book (invalid or truncated JSON, a top-level value
// that is not an object, "addrs" that is not an array, an unknown value nested
// more than 64 levels deep, more than 64 MiB), or
// if reading r fails, the book is left empty with its previous key and the
// error is returned; content errors wrap ErrCorruptFile, read errors
// are wrapped as they are. Load never panics on any input (FuzzLoad).
func (a *AddrBook) Load(r io.Reader, now time.Time) (LoadReport, error) {
	prevKey := a.key
	a.reset()
	var rep LoadReport
	lr := &limitedReader{r: r, left: maxFileBytes}
	dec := json.NewDecoder(lr)
	err := a.decode(dec, now.Round(0), &rep)
	if err != nil {
		a.reset()
		a.key = prevKey
		switch {
		case lr.err != nil && !errors.Is(lr.err, errFileTooLarge):
			return rep, fmt.Errorf("addrbook: load: %w", lr.err)
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF // "{" then nothing: truncated
		}
		return rep, fmt.Errorf("%w: %w", ErrCorruptFile, err)
	}
	return rep, nil
}

var errFileTooLarge = fmt.Errorf("input larger than %d bytes", maxFileBytes)

// limitedReader is io.LimitReader with a distinct error at the limit and a
// record of the underlying reader's error.
type limitedReader struct {
	r    io.Reader
	left int64
	err  error // first non-EOF error of r, or errFileTooLarge
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.err = errFileTooLarge
		return 0, errFileTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	return n, err
}

func (a *AddrBook) decode(dec *json.Decoder, now time.Time, rep *LoadReport) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	sawKey := false
	examined := 0 // entries examined, over every "addrs" key (a repeated key gets no new budget)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string) // object keys are always strings
		switch name {
		case "key":
			var k string
			if err := dec.Decode(&k); err != nil {
				return fmt.Errorf("\"key\": %w", err)
			}
			if k != "" && len(k) <= maxKeyLen {
				a.key, sawKey = k, true
			}
		case "addrs":
			if err := a.decodeAddrs(dec, now, rep, &examined); err != nil {
				return err
			}
			if rep.Truncated { // stop reading: the rest is not looked at
				rep.KeyIgnored = !sawKey
				return nil
			}
		default:
			if err := skipValue(dec); err != nil {
				return err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	rep.KeyIgnored = !sawKey
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, got %v", want, tok)
	}
	return nil
}

// maxSkipDepth bounds the nesting of an unknown value skipValue consumes: the decoder keeps
// a record per open array or object, so 64 MiB of "[" would cost gigabytes.
const maxSkipDepth = 64

// skipValue consumes one JSON value token by token, so that a huge unknown
// value is never held in memory at once.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > maxSkipDepth {
				return fmt.Errorf("an unknown value nested deeper than %d levels", maxSkipDepth)
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func (a *AddrBook) decodeAddrs(dec *json.Decoder, now time.Time, rep *LoadReport, examined *int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // "addrs": null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("\"addrs\": expected an array, got %v", tok)
	}
	for dec.More() {
		if *examined >= maxLoadEntries {
			rep.Truncated = true
			return nil
		}
		*examined++
		var e jsonKnownAddress
		if err := dec.Decode(&e); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) { // the value was consumed; skip it
				rep.skip(SkipBadType)
				continue
			}
			return err
		}
		if reason := a.loadEntry(&e, now); reason != "" {
			rep.skip(reason)
		} else {
			rep.Loaded++
		}
	}
	return expectDelim(dec, ']')
}

func parseJSONAddr(j jsonNetAddress, allowNoIP bool) (netaddr.NetAddress, bool) {
	if j.Port > 65535 {
		return netaddr.NetAddress{}, false
	}
	na := netaddr.NetAddress{ID: key.ID(j.ID), Port: uint16(j.Port)}
	if j.IP == "" && allowNoIP {
		return na, true
	}
	ip, err := netip.ParseAddr(j.IP)
	if err != nil || ip.Zone() != "" {
		return netaddr.NetAddress{}, false
	}
	na.IP = ip.Unmap()
	return na, true
}

// loadEntry checks one decoded entry and puts it in its stored buckets. It
// returns "" on success, else the skip reason.
func (a *AddrBook) loadEntry(e *jsonKnownAddress, now time.Time) string {
	addr, ok := parseJSONAddr(e.Addr, false)
	if !ok || addr.Valid() != nil {
		return SkipInvalidAddr
	}
	src, ok := parseJSONAddr(e.Src, true)
	if !ok {
		return SkipInvalidSrc
	}
	la, ok1 := parseTime(e.LastAttempt)
	ls, ok2 := parseTime(e.LastSuccess)
	lb, ok3 := parseTime(e.LastBanTime)
	if !ok1 || !ok2 || !ok3 {
		return SkipBadTime
	}
	switch {
	case a.isPrivate(addr.ID) || a.isPrivate(src.ID):
		return SkipPrivate
	case a.OurAddress(addr):
		return SkipSelf
	case a.strict && !addr.Routable():
		return SkipNonRoutable
	case a.IsBanned(now, addr.ID):
		return SkipBanned
	case a.lookup[addr.ID] != nil:
		return SkipDuplicate
	}
	delete(a.bans, addr.ID) // expired, as in AddAddress
	t := BucketType(e.BucketType)
	var nBuckets, maxBuckets int
	switch {
	case e.BucketType == int(BucketNew):
		nBuckets, maxBuckets = newBucketCount, maxNewBucketsPerAddress
	case e.BucketType == int(BucketOld):
		nBuckets, maxBuckets = oldBucketCount, 1
	default:
		return SkipBadBucketType
	}
	if len(e.Buckets) == 0 || len(e.Buckets) > maxBuckets {
		return SkipBadBuckets
	}
	for i, idx := range e.Buckets {
		if idx < 0 || idx >= nBuckets {
			return SkipBucketOutOfRange
		}
		for _, prev := range e.Buckets[:i] {
			if prev == idx {
				return SkipBadBuckets
			}
		}
	}
	ka := &knownAddress{
		addr:        addr,
		src:         unique.Make(src),
		attempts:    max(e.Attempts, 0),
		bucketType:  t,
		lastAttempt: stampOf(clampTime(la, now)),
		lastSuccess: stampOf(clampTime(ls, now)),
		lastBanTime: stampOf(lb),
	}
	placed := false
	for _, idx := range e.Buckets {
		bp := a.bucket(t, idx)
		if len(*bp) >= newBucketSize { // == oldBucketSize
			continue
		}
		*bp = append(*bp, ka)
		if len(*bp) == 1 {
			if t == BucketOld {
				a.nonEmptyOld++
			} else {
				a.nonEmptyNew++
			}
		}
		ka.addRef(idx)
		placed = true
	}
	if !placed {
		return SkipBucketFull
	}
	a.lookup[addr.ID] = ka
	a.listAdd(ka)
	return ""
}

func clampTime(t, now time.Time) time.Time {
	if t.After(now) {
		return now
	}
	return t
}
