package psbench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/switchyard-p2p/switchyard/metrics"
)

// Detailer is implemented by a Net that can break its traffic down (Switchyard: messages and
// payload bytes per MConnection channel). Run reports the increase over the window.
type Detailer interface {
	Detail() map[string]int64
}

// chanCounter is a metrics.Counter keyed by its one label value (the channel), summed over
// every peer of every node.
type chanCounter struct {
	mu sync.Mutex
	m  map[string]*atomic.Int64
}

func (c *chanCounter) With(lvs ...string) metrics.Counter {
	k := strings.Join(lvs, ",")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*atomic.Int64)
	}
	v := c.m[k]
	if v == nil {
		v = new(atomic.Int64)
		c.m[k] = v
	}
	return chanChild{v}
}

func (c *chanCounter) Add(float64) {}

func (c *chanCounter) snapshot(prefix string, out map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		out[prefix+k] = v.Load()
	}
}

type chanChild struct{ v *atomic.Int64 }

func (c chanChild) With(...string) metrics.Counter { return c }
func (c chanChild) Add(d float64)                  { c.v.Add(int64(d)) }

// FormatDetail renders a detail map as "key=value ..." sorted by key.
func FormatDetail(d map[string]int64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(d)) {
		fmt.Fprintf(&b, " %s=%d", k, d[k])
	}
	return strings.TrimSpace(b.String())
}
