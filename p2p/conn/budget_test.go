package conn

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMemoryBudgetReserve: reservations beyond the limit are refused and counted, Used never
// exceeds the limit under concurrent use, releases bring it back to zero; a nil budget and a
// non-positive limit mean no limit.
func TestMemoryBudgetReserve(t *testing.T) {
	b := NewMemoryBudget(100)
	if !b.Reserve(60) || b.Reserve(41) || b.Refused() != 1 || b.Used() != 60 {
		t.Fatalf("used %d refused %d", b.Used(), b.Refused())
	}
	if !b.Reserve(40) || b.Used() != 100 {
		t.Fatalf("exact fit refused: used %d", b.Used())
	}
	b.Release(100)
	if b.Used() != 0 || b.Peak() != 100 || b.Limit() != 100 {
		t.Fatalf("used %d peak %d limit %d", b.Used(), b.Peak(), b.Limit())
	}

	var nilB *MemoryBudget
	if !nilB.Reserve(1<<40) || nilB.Used() != 0 || nilB.Refused() != 0 {
		t.Fatal("nil budget refused")
	}
	nilB.Release(1)
	if u := NewMemoryBudget(0); !u.Reserve(1<<50) || u.Used() != 1<<50 {
		t.Fatal("unlimited budget refused")
	}

	c := NewMemoryBudget(10_000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var held []int64 // up to 4 reservations at a time: together they exceed the limit
			for range 20_000 {
				if len(held) == 4 || (len(held) > 0 && rng.IntN(2) == 0) {
					c.Release(held[0])
					held = held[1:]
				}
				n := int64(1 + rng.IntN(3000))
				if c.Reserve(n) {
					if u := c.Used(); u > c.Limit() {
						t.Errorf("used %d > limit", u)
					}
					held = append(held, n)
				}
			}
			for _, n := range held {
				c.Release(n)
			}
		})
	}
	wg.Wait()
	if c.Used() != 0 || c.Peak() > c.Limit() || c.Refused() == 0 {
		t.Fatalf("used %d peak %d refused %d", c.Used(), c.Peak(), c.Refused())
	}
}

// TestMConnRecvBudgetB07 is RELIABILITY B-07: four connections share a 256 KiB receive budget
// while their ReceiveFuncs are stuck, and their peers keep sending 16 KiB messages (each
// channel's own RecvQueueBytes, 4 MiB, would let each connection hold sixteen times the
// budget). The bytes held never exceed the budget (Peak ≤ Limit), the reservation that would
// pass it is refused and counted (Refused), the connection that needed it fails with a
// *MemoryBudgetError wrapping ErrMemoryBudgetExceeded (its ErrorFunc, so the Switch drops the
// peer), and closing everything returns every byte (Used 0). A fifth connection afterwards gets
// its messages through.
func TestMConnRecvBudgetB07(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 256 << 10
		budget := NewMemoryBudget(limit)
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 100}}
		stuck := make(chan struct{})
		type pair struct {
			send, recv *MConnection
			errs       chan error
		}
		newPair := func(onReceive ReceiveFunc) pair {
			ca, cb := net.Pipe()
			p := pair{errs: make(chan error, 1)}
			var err error
			p.recv, err = NewMConnection(cb, descs, onReceive, func(err error) { p.errs <- err },
				MConnConfig{RecvBudget: budget, SendRate: -1, RecvRate: -1})
			if err != nil {
				t.Fatal(err)
			}
			p.send, err = NewMConnection(ca, descs, nil, nil, MConnConfig{SendRate: -1, RecvRate: -1})
			if err != nil {
				t.Fatal(err)
			}
			_ = p.recv.Start()
			_ = p.send.Start()
			return p
		}
		var pairs []pair
		var unstick sync.Once
		cleanup := func() {
			unstick.Do(func() { close(stuck) })
			for _, p := range pairs {
				_ = p.send.Close()
				_ = p.recv.Close()
			}
		}
		defer cleanup()
		for range 4 {
			pairs = append(pairs, newPair(func(byte, []byte) { <-stuck }))
		}
		msg := bytes.Repeat([]byte{7}, 16<<10)
		for range 20 {
			for _, p := range pairs {
				p.send.TrySend(0x01, msg)
			}
			time.Sleep(10 * time.Millisecond) // the readers hand stuck deliveries over after 1 ms
		}
		if budget.Peak() > limit {
			t.Fatalf("peak %d bytes > budget %d", budget.Peak(), limit)
		}
		if budget.Refused() == 0 {
			t.Fatalf("no reservation refused: used %d of %d", budget.Used(), limit)
		}
		failed := 0
		for _, p := range pairs {
			select {
			case err := <-p.errs:
				var be *MemoryBudgetError
				if !errors.Is(err, ErrMemoryBudgetExceeded) || !errors.As(err, &be) || be.ChannelID != 0x01 || be.Limit != limit {
					t.Fatalf("connection failed with %v, want a *MemoryBudgetError", err)
				}
				failed++
			default:
			}
		}
		if failed == 0 {
			t.Fatal("no connection failed although reservations were refused")
		}
		t.Logf("B-07: 4 connections × 20 messages of 16 KiB against a %d KiB budget: peak %d KiB, %d reservations refused, %d connections failed",
			limit>>10, budget.Peak()>>10, budget.Refused(), failed)

		cleanup()
		synctest.Wait()
		if u := budget.Used(); u != 0 {
			t.Fatalf("%d bytes still reserved after every connection closed", u)
		}

		var got [][]byte
		var mu sync.Mutex
		p := newPair(func(_ byte, m []byte) { mu.Lock(); got = append(got, bytes.Clone(m)); mu.Unlock() })
		defer p.send.Close()
		defer p.recv.Close()
		for range 3 {
			p.send.Send(0x01, msg)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 3 || !bytes.Equal(got[2], msg) {
			t.Fatalf("%d messages after the budget was freed", len(got))
		}
		if budget.Used() != 0 {
			t.Fatalf("%d bytes reserved after the messages were delivered", budget.Used())
		}
	})
}
