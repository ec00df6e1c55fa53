package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
	"github.com/switchyard-p2p/switchyard/sim"
)

// Run is one run to report.
type Run struct {
	// Scenario and Description name the run.
	Scenario    string
	Description string
	// Results are the run's results; Results.WallSeconds goes to summary.json only.
	Results *sim.Results
}

// Summary is summary.json: the scenario's name and the run's Results (their JSON fields).
type Summary struct {
	Scenario string `json:"scenario"`
	*sim.Results
}

// DeliveryBucket is one second of publication in delivery.csv and results.json.
type DeliveryBucket struct {
	Second    int     `json:"second"`
	Messages  int     `json:"messages"`
	Expected  int     `json:"expected"`
	Delivered int     `json:"delivered"`
	Ratio     float64 `json:"ratio"`
}

// Quantile is one point of the latency distribution.
type Quantile struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

// Full is results.json.
type Full struct {
	Scenario    string           `json:"scenario"`
	Description string           `json:"description"`
	Summary     sim.Results      `json:"summary"`
	Samples     []sim.Sample     `json:"samples"`
	Delivery    []DeliveryBucket `json:"delivery"`
	Latency     []Quantile       `json:"latency"`
}

// Delivery returns the delivery per second of publication.
func Delivery(r *sim.Results) []DeliveryBucket {
	var out []DeliveryBucket
	for _, m := range r.Messages {
		sec := int(m.At.Seconds())
		if len(out) == 0 || out[len(out)-1].Second != sec {
			out = append(out, DeliveryBucket{Second: sec})
		}
		b := &out[len(out)-1]
		b.Messages++
		b.Expected += m.Expected
		b.Delivered += m.Delivered
	}
	for i := range out {
		out[i].Ratio = 1
		if out[i].Expected > 0 {
			out[i].Ratio = float64(out[i].Delivered) / float64(out[i].Expected)
		}
	}
	return out
}

// LatencyQuantiles returns the latency at quantiles 0, 0.001, ..., 1 by nearest rank
// (sim.Quantile, as the summary's percentiles); nil without deliveries.
func LatencyQuantiles(r *sim.Results) []Quantile {
	xs := r.LatencyMs
	if len(xs) == 0 {
		return nil
	}
	out := make([]Quantile, 0, 1001)
	for k := 0; k <= 1000; k++ {
		q := float64(k) / 1000
		out = append(out, Quantile{Q: q, Ms: sim.Quantile(xs, q)})
	}
	return out
}

// Write writes every file of run into dir (created if needed), each replaced atomically
// (temporary file, fsync, rename: internal/atomicfile). A file it could not write
// does not stop the others; it returns the errors of all such files joined (errors.Join),
// each wrapped with the file's name, or nil when every file was written. An error creating
// dir, or a run without Results, is returned alone before any file is written.
func Write(dir string, run Run) error {
	if run.Results == nil {
		return errors.New("report: no results")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r := run.Results
	var errs []error
	put := func(name string, b []byte, err error) {
		if err == nil {
			// Replaced atomically: a run killed while writing leaves each file whole, from
			// this run or from the one before, never cut off.
			err = atomicfile.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("report: %s: %w", name, err))
		}
	}
	data := func(name string, f func() ([]byte, error)) {
		b, err := f()
		put(name, b, err)
	}
	put(jsonFile("summary.json", Summary{Scenario: run.Scenario, Results: r}))
	full := Full{Scenario: run.Scenario, Description: run.Description, Summary: *r,
		Samples: r.Samples, Delivery: Delivery(r), Latency: LatencyQuantiles(r)}
	full.Summary.WallSeconds = 0
	put(jsonFile("results.json", full))
	data("messages.csv", func() ([]byte, error) { return messagesCSV(r) })
	data("delivery.csv", func() ([]byte, error) { return deliveryCSV(full.Delivery) })
	data("latency.csv", func() ([]byte, error) { return latencyCSV(full.Latency) })
	data("mesh_degree.csv", func() ([]byte, error) { return meshCSV(r) })
	data("samples.csv", func() ([]byte, error) { return samplesCSV(r.Samples) })
	for _, p := range plots(run, full) {
		for _, ext := range []string{"svg", "png"} {
			b, err := render(p.plot, ext)
			put(p.name+"."+ext, b, err)
		}
	}
	data("index.html", func() ([]byte, error) { return indexHTML(run, full) })
	return errors.Join(errs...)
}

func jsonFile(name string, v any) (string, []byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return name, append(b, '\n'), err
}

func table(header []string, rows [][]string) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(header); err != nil {
		return nil, err
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func f(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }
func d(x int) string     { return strconv.Itoa(x) }

func messagesCSV(r *sim.Results) ([]byte, error) {
	rows := make([][]string, 0, len(r.Messages))
	for _, m := range r.Messages {
		rows = append(rows, []string{d(m.Index), f(float64(m.At.Microseconds()) / 1000), d(m.Publisher),
			strconv.FormatBool(m.Censored), d(m.Expected), d(m.Delivered), f(m.MeanMs), f(m.MaxMs)})
	}
	return table([]string{"index", "published_ms", "publisher", "censored", "expected", "delivered", "mean_ms", "max_ms"}, rows)
}

func deliveryCSV(bs []DeliveryBucket) ([]byte, error) {
	rows := make([][]string, 0, len(bs))
	for _, b := range bs {
		rows = append(rows, []string{d(b.Second), d(b.Messages), d(b.Expected), d(b.Delivered), f(b.Ratio)})
	}
	return table([]string{"second", "messages", "expected", "delivered", "ratio"}, rows)
}

func latencyCSV(qs []Quantile) ([]byte, error) {
	rows := make([][]string, 0, len(qs))
	for _, q := range qs {
		rows = append(rows, []string{f(q.Q), f(q.Ms)})
	}
	return table([]string{"quantile", "latency_ms"}, rows)
}

func meshCSV(r *sim.Results) ([]byte, error) {
	rows := make([][]string, 0, len(r.MeshDegree))
	for deg, n := range r.MeshDegree {
		rows = append(rows, []string{d(deg), d(n)})
	}
	return table([]string{"mesh_degree", "nodes"}, rows)
}

func samplesCSV(ss []sim.Sample) ([]byte, error) {
	h := []string{"at_s", "nodes_up", "connections", "mesh_min", "mesh_mean", "mesh_max", "sybil_mesh_share"}
	for _, who := range []string{"honest", "sybil", "honest_mesh", "sybil_mesh"} {
		for _, q := range []string{"n", "min", "p10", "p50", "p90", "max"} {
			h = append(h, who+"_score_"+q)
		}
	}
	rows := make([][]string, 0, len(ss))
	for _, s := range ss {
		row := []string{f(s.At.Seconds()), d(s.NodesUp), d(s.Connections), d(s.MeshMin), f(s.MeshMean), d(s.MeshMax), f(s.SybilMeshShare)}
		for _, q := range []sim.Quantiles{s.HonestScores, s.SybilScores, s.HonestMeshScores, s.SybilMeshScores} {
			row = append(row, d(q.N), f(q.Min), f(q.P10), f(q.P50), f(q.P90), f(q.Max))
		}
		rows = append(rows, row)
	}
	return table(h, rows)
}
