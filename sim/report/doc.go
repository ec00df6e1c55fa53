// Package report writes a simulator run's results to a directory: the raw results as CSV
// and JSON, plots as SVG and PNG (gonum.org/v1/plot), and an index.html that shows them
// together. It backs `switchyard sim --out DIR`.
//
// Files (Write):
//
//	summary.json      the headline figures (sim.Results' JSON) with the scenario name and
//	                  wall_seconds, the only field that differs between two runs of a seed;
//	                  for a run that published nothing, or expected no delivery, its
//	                  delivery ratios are 1, and for one without deliveries its latencies
//	                  and per-delivery figures 0 (sim.Results' values), where index.html
//	                  shows "-"
//	results.json      everything deterministic: the summary without wall_seconds, the
//	                  samples, the mesh-degree histogram, the latency quantiles, the
//	                  per-second delivery
//	messages.csv      one row per published message: time, publisher, whether it was
//	                  censored, honest deliveries expected and made in time, and the mean
//	                  and largest latency of its honest deliveries in milliseconds (late
//	                  ones included; 0 when none), which points at the messages behind a
//	                  high p99
//	delivery.csv      per second of publication: messages, expected, delivered, ratio
//	latency.csv       the latency distribution: quantile, milliseconds (1,001 points, by
//	                  nearest rank as the summary's percentiles; no rows without deliveries)
//	mesh_degree.csv   mesh degree, honest nodes with it (at the end of the run)
//	samples.csv       per sample: nodes up, connections, mesh min/mean/max, sybil share of
//	                  mesh slots, score quantiles given to honest and to sybil peers
//	latency_cdf, delivery, mesh_degree, scores (.svg and .png)
//	index.html        the summary table and the four plots, with how to read them
//
// Every file but summary.json is a function of the run's Config: a seed reproduces them
// byte for byte (TestWriteDeterministic). Concurrency: Write is safe to call from several
// goroutines for different directories; it blocks until every file is written.
package report
