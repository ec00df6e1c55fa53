package sim

import (
	"reflect"
	"testing"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// statsRouter is a router.Router whose only working method is Stats.
type statsRouter struct {
	router.Router
	st router.Stats
}

func (r statsRouter) Stats() router.Stats { return r.st }

// TestAddStatsSumsEveryCounter: Results.Router (summary.json's "router") sums every counter
// of router.Stats over the honest nodes, not a hand-picked subset.
func TestAddStatsSumsEveryCounter(t *testing.T) {
	var st router.Stats
	v := reflect.ValueOf(&st).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i + 1))
	}
	var m metrics
	n := &node{ps: &pubsubCore{r: statsRouter{st: st}}}
	m.addStats(n)
	m.addStats(n)
	got := reflect.ValueOf(m.stats)
	for i := range v.NumField() {
		if g, w := got.Field(i).Uint(), 2*uint64(i+1); g != w {
			t.Errorf("Router.%s = %d after two nodes, want %d", v.Type().Field(i).Name, g, w)
		}
	}
}
