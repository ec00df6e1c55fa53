package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/sim"
)

// smallRun runs a small attacked network (so that every plot has data) with seed.
func smallRun(t testing.TB, seed uint64) Run {
	t.Helper()
	sc, err := sim.LoadScenario("cold-boot")
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Resize(20, 40)
	c.Seed = seed
	c.Duration = 20 * time.Second
	s, err := sim.New(c)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return Run{Scenario: sc.Name, Description: sc.Description, Results: s.Run()}
}

var deterministicFiles = []string{"results.json", "messages.csv", "delivery.csv", "latency.csv", "mesh_degree.csv", "samples.csv"}

// TestWriteDeterministic: one seed run twice gives byte-identical CSV and JSON files, and
// summary.json differs in wall_seconds only.
func TestWriteDeterministic(t *testing.T) {
	const seed = 5
	dirs := []string{t.TempDir(), t.TempDir()}
	for i, dir := range dirs {
		run := smallRun(t, seed)
		run.Results.WallSeconds = float64(i + 1) // two different wall clocks
		if err := Write(dir, run); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range deterministicFiles {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], name))
		if err != nil {
			t.Fatal(err)
		}
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("seed %d: %s differs between two runs (or is empty)", seed, name)
		}
	}
	var sums [2]map[string]any
	for i, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sums[i]); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"delivery_ratio", "honest_delivery_ratio", "latency_p50_ms", "latency_p99_ms", "bytes_per_delivery", "wall_seconds"} {
			if _, ok := sums[i][k]; !ok {
				t.Errorf("summary.json has no %s", k)
			}
		}
		delete(sums[i], "wall_seconds")
	}
	a, _ := json.Marshal(sums[0])
	b, _ := json.Marshal(sums[1])
	if !bytes.Equal(a, b) {
		t.Errorf("seed %d: summary.json differs beyond wall_seconds", seed)
	}
}

// TestWriteFiles: every file is written and the plots are real SVG and PNG.
func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, smallRun(t, 6)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"latency_cdf", "delivery", "mesh_degree", "scores"} {
		svg, err := os.ReadFile(filepath.Join(dir, p+".svg"))
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s.svg: %v", p, err)
		}
		png, err := os.ReadFile(filepath.Join(dir, p+".png"))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("%s.png: %v", p, err)
		}
	}
	html, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil || !bytes.Contains(html, []byte(`src="scores.svg"`)) || !bytes.Contains(html, []byte("cold-boot")) {
		t.Fatalf("index.html: %v", err)
	}
}

// TestLatencyQuantilesAgreeWithSummary: latency.csv's quantiles are by nearest rank, the
// method of the summary's percentiles, so that its 0.5 and 0.99 rows are summary.json's
// latency_p50_ms and latency_p99_ms.
func TestLatencyQuantilesAgreeWithSummary(t *testing.T) {
	r := &sim.Results{LatencyMs: []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}}
	want := map[float64]float64{0: 10, 0.5: 50, 0.7: 70, 0.99: 100, 1: 100}
	for _, q := range LatencyQuantiles(r) {
		if w, ok := want[q.Q]; ok && q.Ms != w {
			t.Errorf("quantile %v of 10..100 = %v, want %v", q.Q, q.Ms, w)
		}
	}
	run := smallRun(t, 6)
	for _, q := range LatencyQuantiles(run.Results) {
		if (q.Q == 0.5 && q.Ms != run.Results.LatencyP50Ms) || (q.Q == 0.99 && q.Ms != run.Results.LatencyP99Ms) {
			t.Errorf("quantile %v is %v ms; the summary's p50 and p99 are %v and %v ms",
				q.Q, q.Ms, run.Results.LatencyP50Ms, run.Results.LatencyP99Ms)
		}
	}
}

// TestIndexWithoutPublicationsShowsNoFigures: for a run that published nothing, index.html
// shows "-" for the delivery ratios and latencies (as the CLI's summary does), not the
// perfect 1.0000 and 0.0 ms that Results holds for an empty run.
func TestIndexWithoutPublicationsShowsNoFigures(t *testing.T) {
	r := &sim.Results{Nodes: 10, DeliveryRatio: 1, HonestDeliveryRatio: 1}
	b, err := indexHTML(Run{Scenario: "gossip", Results: r}, Full{Summary: *r})
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, row := range []string{"delivery ratio", "honest delivery ratio", "latency p50 / p90 / p99 / max",
		"bytes per delivery", "duplicates per delivery"} {
		if !strings.Contains(html, "<tr><td>"+row+`</td><td class="n">-</td></tr>`) {
			t.Errorf("row %q does not show -", row)
		}
	}
	if strings.Contains(html, "1.0000") || strings.Contains(html, "0.0 ms") {
		t.Errorf("index.html shows figures for a run without publications:\n%s", html)
	}
}

// TestMessagesCSV: one row per message, with its censorship flag, its expected and on-time
// deliveries, and the mean and largest latency of its honest deliveries (0 without any).
func TestMessagesCSV(t *testing.T) {
	r := &sim.Results{Messages: []sim.MessageResult{
		{Index: 0, At: 1500 * time.Millisecond, Publisher: 7, Expected: 9, Delivered: 9, MeanMs: 80.5, MaxMs: 212.25},
		{Index: 1, At: 2 * time.Second, Publisher: 3, Censored: true, Expected: 9},
	}}
	b, err := messagesCSV(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "index,published_ms,publisher,censored,expected,delivered,mean_ms,max_ms\n" +
		"0,1500,7,false,9,9,80.5,212.25\n" +
		"1,2000,3,true,9,0,0,0\n"
	if string(b) != want {
		t.Errorf("messages.csv:\n%s\nwant:\n%s", b, want)
	}
}

// TestIndexEmptyAttackWindow: an attack-window figure that no expected delivery backs (the
// run ended before the attack, or the only publisher is the target) shows "-", not the
// 1.0000 and 0.0 ms Results holds for an empty set; one that has deliveries behind it shows
// its figures.
func TestIndexEmptyAttackWindow(t *testing.T) {
	one, zero, p99 := 1.0, 0.0, 31.5
	none, some := int64(0), int64(40)
	r := &sim.Results{Nodes: 10, Published: 2, DeliveryRatio: 1, HonestDeliveryRatio: 1, LatencyP50Ms: 25,
		AttackFrom: 30 * time.Second, AttackDeliveryRatio: &one, AttackLatencyP99Ms: &p99, AttackExpected: &some,
		TargetDeliveryRatio: &one, TargetLatencyP99Ms: &zero, TargetExpected: &none}
	b, err := indexHTML(Run{Scenario: "eclipse", Results: r}, Full{Summary: *r})
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{
		`<tr><td>eclipse targets&#39; delivery ratio</td><td class="n">- (no delivery to a target expected from 30s on)</td></tr>`,
		`<tr><td>under attack (published from 30s)</td><td class="n">delivery ratio 1.0000, p99 31.5 ms</td></tr>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if strings.Contains(html, "p99 0.0 ms") {
		t.Errorf("index.html shows a p99 of no deliveries:\n%s", html)
	}
}

// TestIndexNothingExpectedShowsNoFigures: a run that published messages but expected no
// delivery and made none (interrupted soon after publishing started) shows "-" for the
// delivery ratios, latencies and per-delivery figures, as the CLI does, not the 1.0000,
// 0.0 ms and 0 that Results holds for empty sets.
func TestIndexNothingExpectedShowsNoFigures(t *testing.T) {
	r := &sim.Results{Nodes: 10, Published: 3, DeliveryRatio: 1, HonestDeliveryRatio: 1}
	b, err := indexHTML(Run{Scenario: "gossip", Results: r}, Full{Summary: *r})
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, row := range []string{"delivery ratio", "honest delivery ratio", "latency p50 / p90 / p99 / max",
		"bytes per delivery", "duplicates per delivery"} {
		if !strings.Contains(html, "<tr><td>"+row+`</td><td class="n">- (no `) {
			t.Errorf("row %q does not show -", row)
		}
	}
}
