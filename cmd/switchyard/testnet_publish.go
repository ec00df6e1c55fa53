package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/testnet"
)

// publishFlags are testnet's pub/sub phase flags.
type publishFlags struct {
	rate    float64
	msgSize int
	router  string
}

func addPublishFlags(cmd *cobra.Command, f *publishFlags) {
	fl := cmd.Flags()
	fl.Float64Var(&f.rate, "publish", 0, "after convergence, publish RATE messages/s on topic "+testnet.DemoTopic+" from random nodes until --duration, and report delivery, latency and bytes")
	fl.IntVar(&f.msgSize, "msg-size", testnet.DefaultMsgBytes, "with --publish: message size in bytes")
	fl.StringVar(&f.router, "router", "gossipsub", "with --publish: gossipsub or floodsub")
	cmd.Long += `

--publish RATE turns on pub/sub on every node (not on the seed, which keeps no
peers) with the topic "` + testnet.DemoTopic + `" joined, and, once the network has
converged and every node has a peer on the topic, publishes RATE messages per
second of --msg-size bytes, each through a random node's POST /pubsub/publish,
until --duration has passed (less 5 s to drain). Every node's
/pubsub/subscribe stream is read meanwhile. The report adds the delivery ratio
(every node but the publisher must receive every message), the latency p50 and
p99 (publish request to receipt on the subscriber's stream) and the pub/sub
bytes sent per delivered message; --json carries them as delivery_ratio,
latency_p50_ms, latency_p99_ms and bytes_per_delivery. The command exits 1
unless every node received every message.`
	cmd.Example += `
  switchyard testnet --nodes 12 --publish 20 --duration 60s
  switchyard testnet --nodes 8 --publish 50 --msg-size 4096 --router floodsub --json`
}

func (f publishFlags) config() testnet.PublishConfig {
	return testnet.PublishConfig{RatePerSec: f.rate, MsgBytes: f.msgSize, Router: f.router}
}

// writePublishReport prints the pub/sub phase's lines of the human-readable report; nothing
// without a phase.
func writePublishReport(w io.Writer, p *testnet.PublishReport) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "pub/sub: %s on %q, %d nodes, %d messages of %d bytes at %g/s over %s (%d publish errors)\n",
		p.Router, p.Topic, p.Nodes, p.Published, p.MsgBytes, p.Rate, p.PublishTime.Round(time.Millisecond), p.PublishErrors)
	fmt.Fprintf(w, "  delivered %d/%d (%.2f%%), %d duplicates\n", p.Delivered, p.Expected, 100*p.DeliveryRatio, p.Duplicates)
	fmt.Fprintf(w, "  latency p50 %.1f ms, p99 %.1f ms (publish request to receipt on the subscriber's stream)\n", p.LatencyP50Ms, p.LatencyP99Ms)
	if p.BytesSent >= 0 {
		fmt.Fprintf(w, "  %.0f bytes sent per delivered message (%d bytes in all)\n", p.BytesPerDelivery, p.BytesSent)
		fmt.Fprintf(w, "  (%s)\n", p.BytesMeasured)
	}
}
