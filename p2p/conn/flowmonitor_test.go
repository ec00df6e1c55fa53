package conn

import (
	"math"
	"testing"
	"time"
)

// TestFlowMonitorStatus pins the monitor's fields to the meanings of CometBFT's flowrate.Status
// (bytes per second, Idle a duration), on explicit sample times: Samples counts the samples,
// InstRate is the last sample's rate, CurRate their moving average, PeakRate the highest sample
// rate, Idle the time since bytes last moved (at the samples' resolution).
func TestFlowMonitorStatus(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var m flowMonitor
	m.begin(t0)
	if st := m.snapshot(t0, t0.Add(time.Second)); st.Samples != 0 || st.Idle != time.Second || st.InstRate != 0 {
		t.Fatalf("before any sample: %+v, want no samples and idle since start", st)
	}
	m.add(1000)
	m.sample(t0.Add(2 * time.Second))
	st := m.snapshot(t0, t0.Add(3*time.Second))
	if st.Samples != 1 || st.InstRate != 500 || st.CurRate != 500 || st.PeakRate != 500 || st.Idle != time.Second || st.Bytes != 1000 {
		t.Fatalf("after 1000 B in 2 s: %+v, want 1 sample at 500 B/s, idle 1 s", st)
	}
	m.add(3000)
	m.sample(t0.Add(4 * time.Second))
	ema := 1500 + math.Exp(-0.2)*(500-1500)
	st = m.snapshot(t0, t0.Add(4*time.Second))
	if st.Samples != 2 || st.InstRate != 1500 || st.PeakRate != 1500 || st.CurRate != int64(math.Round(ema)) || st.Idle != 0 {
		t.Fatalf("after 3000 B more: %+v, want inst 1500, peak 1500, cur %.0f, idle 0", st, ema)
	}
	m.sample(t0.Add(6 * time.Second)) // nothing moved
	ema = math.Exp(-0.2) * ema
	st = m.snapshot(t0, t0.Add(7*time.Second))
	if st.Samples != 3 || st.InstRate != 0 || st.PeakRate != 1500 || st.CurRate != int64(math.Round(ema)) || st.Idle != 3*time.Second {
		t.Fatalf("after an idle sample: %+v, want inst 0, peak kept, cur %.0f, idle 3 s", st, ema)
	}
	if st.AvgRate != 4000/7 {
		t.Errorf("AvgRate %d, want %d", st.AvgRate, 4000/7)
	}
	m.add(10) // moved since the last sample
	if st := m.snapshot(t0, t0.Add(7*time.Second)); st.Idle != 0 {
		t.Errorf("Idle %v right after a transfer, want 0", st.Idle)
	}
}

// TestFlowMonitorOverdueSample: snapshot takes a sample that is a whole interval overdue (the send
// goroutine that samples is blocked in a write), and the send goroutine's own sample, due at once
// when it resumes, does not then measure a rate over a fraction of the interval.
func TestFlowMonitorOverdueSample(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var m flowMonitor
	m.begin(t0)
	m.add(4000)
	if st := m.snapshot(t0, t0.Add(3*time.Second)); st.Samples != 0 || st.Idle != 0 {
		t.Fatalf("at 3 s: %+v, want no sample yet (not a whole interval overdue)", st)
	}
	if st := m.snapshot(t0, t0.Add(4*time.Second)); st.Samples != 1 || st.InstRate != 1000 {
		t.Fatalf("at 4 s: %+v, want the overdue sample, 1000 B/s", st)
	}
	m.add(1000)
	m.sample(t0.Add(4*time.Second + 100*time.Millisecond)) // the send goroutine resumes
	if st := m.snapshot(t0, t0.Add(4*time.Second+100*time.Millisecond)); st.Samples != 1 || st.PeakRate != 1000 {
		t.Fatalf("after a sample 100 ms later: %+v, want it not taken (no 10,000 B/s peak)", st)
	}
	m.sample(t0.Add(6 * time.Second))
	if st := m.snapshot(t0, t0.Add(6*time.Second)); st.Samples != 2 || st.InstRate != 500 {
		t.Fatalf("at 6 s: %+v, want 1000 B over 2 s", st)
	}
	if st := m.snapshot(t0, t0.Add(20*time.Second)); st.Samples != 3 || st.InstRate != 0 || st.Idle != 14*time.Second {
		t.Fatalf("at 20 s: %+v, want an overdue sample with nothing moved, idle since 6 s", st)
	}
}
