package connbench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Metric is one row of the table.
type Metric struct {
	Key    string // JSON key
	Label  string
	Higher bool // higher is better
}

// Results holds every sample: Samples[stack][metric key] lists one value per round.
type Results struct {
	Stacks  []string
	Metrics []Metric
	Samples map[string]map[string][]float64
}

// NewResults returns empty results for the stacks, in table order.
func NewResults(stacks []string) *Results {
	r := &Results{Stacks: stacks, Samples: map[string]map[string][]float64{}}
	for _, s := range stacks {
		r.Samples[s] = map[string][]float64{}
	}
	return r
}

// Add records one sample of metric m for stack.
func (r *Results) Add(stack string, m Metric, v float64) {
	if !slices.ContainsFunc(r.Metrics, func(x Metric) bool { return x.Key == m.Key }) {
		r.Metrics = append(r.Metrics, m)
	}
	r.Samples[stack][m.Key] = append(r.Samples[stack][m.Key], v)
}

// Median returns the median of stack's samples of key and whether there are any.
func (r *Results) Median(stack, key string) (float64, bool) {
	xs := slices.Clone(r.Samples[stack][key])
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2], true
	}
	return (xs[n/2-1] + xs[n/2]) / 2, true
}

// PrintTable writes the medians as a Markdown table, with the ratio of the first stack's median
// to each other stack's.
func (r *Results) PrintTable(w io.Writer) {
	if len(r.Stacks) == 0 {
		return
	}
	ours := r.Stacks[0]
	head := []string{"figure", "better"}
	head = append(head, r.Stacks...)
	for _, s := range r.Stacks[1:] {
		head = append(head, ours+"/"+s)
	}
	rows := [][]string{head}
	for _, m := range r.Metrics {
		better := "lower"
		if m.Higher {
			better = "higher"
		}
		row := []string{m.Label, better}
		for _, s := range r.Stacks {
			v, ok := r.Median(s, m.Key)
			row = append(row, cell(v, ok))
		}
		o, okO := r.Median(ours, m.Key)
		for _, s := range r.Stacks[1:] {
			t, okT := r.Median(s, m.Key)
			if okO && okT && t != 0 {
				row = append(row, ratioCell(o/t))
			} else {
				row = append(row, "-")
			}
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(head))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	line := func(row []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range row {
			if i == 0 {
				fmt.Fprintf(&b, " %-*s |", widths[i], c)
			} else {
				fmt.Fprintf(&b, " %*s |", widths[i], c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	seps := make([]string, len(head))
	for i, wd := range widths {
		if i == 0 {
			seps[i] = strings.Repeat("-", wd+2)
		} else {
			seps[i] = strings.Repeat("-", wd+1) + ":"
		}
	}
	fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
	for _, row := range rows[1:] {
		line(row)
	}
}

// cell formats a median with about three significant digits.
func cell(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// ratioCell formats a ratio with two decimals, or two significant digits below 0.1.
func ratioCell(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.2gx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}
