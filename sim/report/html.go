package report

import (
	"bytes"
	"fmt"
	"html/template"

	"github.com/switchyard-p2p/switchyard/sim"
)

var indexTmpl = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>switchyard sim: {{.Scenario}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1em; }
figure { margin: 0; border: 1px solid #ddd; padding: 0.5em; }
figure img { width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
</style>
</head>
<body>
<h1>switchyard sim: {{.Scenario}}</h1>
<p>{{.Description}}</p>
<table>
<tr><th>measure</th><th>value</th></tr>
{{range .Rows}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>
{{end}}</table>
<div class="grid">
<figure><img src="latency_cdf.svg" alt="latency CDF"><figcaption>Latency CDF: the share of honest deliveries (y) that arrived within x milliseconds of publication; the dashed lines mark p50 and p99.</figcaption></figure>
<figure><img src="delivery.svg" alt="delivery over time"><figcaption>Delivery over time: for the messages published in each second, the share of the honest nodes (up for the delivery deadline) that received them within it. A dip is an attack, a partition or churn biting.</figcaption></figure>
<figure><img src="mesh_degree.svg" alt="mesh degree histogram"><figcaption>Mesh degree: how many honest nodes hold each number of mesh peers at the end; gossipsub keeps it between Dlo and Dhi when it can.</figcaption></figure>
<figure><img src="scores.svg" alt="scores over time"><figcaption>Scores: what the sampled honest nodes think of the honest (blue) and sybil (orange) peers in their meshes over time, median solid, 10th and 90th percentiles dashed, on a symmetric log scale (samples.csv also has every connected peer). Sybils that stop delivering fall below 0 and are pruned.</figcaption></figure>
</div>
<p>Raw data: summary.json, results.json, messages.csv, delivery.csv, latency.csv, mesh_degree.csv, samples.csv. PNG copies of the plots sit beside the SVGs.</p>
</body>
</html>
`))

func indexHTML(run Run, full Full) ([]byte, error) {
	r := run.Results
	seed := fmt.Sprint(r.Seed)
	if r.ScoringDisabled {
		seed += ", scoring off"
	}
	rows := [][2]string{
		{"seed", seed},
		{"nodes (honest / seeds / sybils)", fmt.Sprintf("%d / %d / %d", r.Nodes, r.Seeds, r.Sybils)},
		{"virtual time", fmt.Sprintf("%.0f s", r.VirtualSeconds)},
		{"messages published", fmt.Sprint(r.Published)},
	}
	if r.Published == 0 {
		// Ratios of nothing: show no figure rather than a perfect one (as the CLI does).
		for _, k := range []string{"delivery ratio", "honest delivery ratio", "latency p50 / p90 / p99 / max",
			"bytes per delivery", "duplicates per delivery"} {
			rows = append(rows, [2]string{k, "-"})
		}
		return indexPage(run, finish(rows, r))
	}
	if r.Expected == 0 {
		// Published, but none early enough for its deadline to pass within the run: the
		// ratios are the 1 of an empty set (as the CLI shows them).
		rows = append(rows,
			[2]string{"delivery ratio", "- (no delivery expected)"},
			[2]string{"honest delivery ratio", "- (no delivery expected)"},
		)
	} else {
		rows = append(rows,
			[2]string{"delivery ratio", fmt.Sprintf("%.4f", r.DeliveryRatio)},
			[2]string{"honest delivery ratio", fmt.Sprintf("%.4f", r.HonestDeliveryRatio)},
		)
	}
	rows = attackRows(rows, r)
	if len(r.LatencyMs) == 0 {
		rows = append(rows, [2]string{"latency p50 / p90 / p99 / max", "- (no deliveries)"})
	} else {
		rows = append(rows, [2]string{"latency p50 / p90 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyMaxMs)})
	}
	if r.Delivered == 0 {
		// Results holds 0 for a ratio with no delivery to divide by.
		rows = append(rows,
			[2]string{"bytes per delivery", "- (no deliveries)"},
			[2]string{"duplicates per delivery", "- (no deliveries)"},
		)
	} else {
		rows = append(rows,
			[2]string{"bytes per delivery", fmt.Sprintf("%.0f", r.BytesPerDelivery)},
			[2]string{"duplicates per delivery", fmt.Sprintf("%.2f", r.DuplicatesPerDelivery)},
		)
	}
	return indexPage(run, finish(rows, r))
}

// attackRows appends the figures of the attack window that r has; "-" for one that no
// expected delivery backs (as the CLI shows them), whose ratio and p99 are the 1 and 0 of an
// empty set.
func attackRows(rows [][2]string, r *sim.Results) [][2]string {
	none := func(exp *int64) bool { return exp != nil && *exp == 0 }
	if r.TargetDeliveryRatio != nil {
		v := fmt.Sprintf("%.4f (p99 %.1f ms)", *r.TargetDeliveryRatio, *r.TargetLatencyP99Ms)
		if none(r.TargetExpected) {
			v = fmt.Sprintf("- (no delivery to a target expected from %v on)", r.AttackFrom)
		}
		rows = append(rows, [2]string{"eclipse targets' delivery ratio", v})
	}
	if r.AttackDeliveryRatio != nil {
		v := fmt.Sprintf("delivery ratio %.4f, p99 %.1f ms", *r.AttackDeliveryRatio, *r.AttackLatencyP99Ms)
		if none(r.AttackExpected) {
			v = fmt.Sprintf("- (no delivery expected from %v on)", r.AttackFrom)
		}
		rows = append(rows, [2]string{fmt.Sprintf("under attack (published from %v)", r.AttackFrom), v})
	}
	if r.CensoredDeliveryRatio != nil {
		v := fmt.Sprintf("%.4f (p99 %.1f ms)", *r.CensoredDeliveryRatio, *r.CensoredLatencyP99Ms)
		if none(r.CensoredExpected) {
			v = fmt.Sprintf("- (no delivery of a censored message expected from %v on)", r.AttackFrom)
		}
		rows = append(rows, [2]string{"censored messages' delivery ratio", v})
	}
	return rows
}

// finish appends the rows that do not depend on publications.
func finish(rows [][2]string, r *sim.Results) [][2]string {
	if r.PEXConvergedSeconds != nil {
		rows = append(rows, [2]string{"PEX convergence", fmt.Sprintf("%.1f s", *r.PEXConvergedSeconds)})
	}
	return append(rows, [2]string{"events", fmt.Sprint(r.Events)})
}

func indexPage(run Run, rows [][2]string) ([]byte, error) {
	var buf bytes.Buffer
	err := indexTmpl.Execute(&buf, map[string]any{"Scenario": run.Scenario, "Description": run.Description, "Rows": rows})
	return buf.Bytes(), err
}
