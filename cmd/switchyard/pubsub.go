package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/pubsubrpc"
)

// pubsubRequestTimeout bounds one pub or peers request (not a sub stream). A variable so that
// tests can shorten it.
var pubsubRequestTimeout = 30 * time.Second

func newPubSubCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Publish, subscribe and list peers through a running node's pub/sub (like ipfs pubsub)",
		Long: `Talk to a running node's pub/sub endpoints (pubsub.enabled = true): publish a
message on a topic, print the messages of a topic as they arrive, or list the
peers a topic's messages go to.

The node's RPC address is --node (host:port, tcp://host:port or
http://host:port), else rpc.laddr from --home's config.toml (an unspecified
host such as 0.0.0.0 means this machine).`,
		// Runnable, so that cobra checks its arguments: a mistyped subcommand is an unknown
		// command (exit 1), not the help and exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	// "pubsub publish --topic chat hi" reaches pubsub itself, whose flag parsing fails on the
	// subcommand's --topic before Args sees "publish": report the mistyped subcommand instead.
	// The subcommands inherit this function; their own flag errors stay as they are.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if c == cmd {
			if aerr := cobra.NoArgs(c, c.Flags().Args()); aerr != nil {
				return aerr
			}
		}
		return err
	})
	cmd.PersistentFlags().String("node", "", "the node's RPC address, host:port (default: rpc.laddr from --home's config.toml; an empty --node is refused)")
	cmd.AddCommand(newPubSubPubCmd(), newPubSubSubCmd(), newPubSubPeersCmd())
	return cmd
}

// nodeClient is a pub/sub client with where its node's address came from, for errors.
type nodeClient struct {
	*pubsubrpc.Client
	from string // "--node ADDR" or "rpc.laddr in FILE"
}

// reach names the node's address and its source in an error that did not come from the node
// (the request never got an answer: nothing listens there, a timeout, ...), so that the operator
// knows which flag or config key to fix; other errors are returned as they are.
func (c nodeClient) reach(err error) error {
	if _, ok := errors.AsType[*url.Error](err); !ok || errors.Is(err, context.Canceled) {
		return err
	}
	how := "is the node running there?"
	if !strings.HasPrefix(c.from, "--node") {
		how += " use --node to name another address"
	}
	return fmt.Errorf("no answer from the node at %s (%s; %s): %w", c.Base, c.from, how, err)
}

// pubsubClient returns a client for the node named by --node or --home's config. stream is
// true for sub: no overall timeout, only one for the response headers.
func pubsubClient(cmd *cobra.Command, stream bool) (nodeClient, error) {
	addr, _ := cmd.Flags().GetString("node")
	from := "--node " + addr
	if addr == "" && cmd.Flags().Changed("node") {
		// A script's unset variable (--node "$NODE_ADDR"): not --home's node, another one.
		return nodeClient{}, fmt.Errorf("%w: --node is empty; leave it out for rpc.laddr from --home's config.toml", errUsage)
	}
	if addr == "" {
		home, err := homeDir(cmd)
		if err != nil {
			return nodeClient{}, err
		}
		path := config.ConfigFile(home)
		cfg, err := config.Load(path)
		if err != nil {
			return nodeClient{}, fmt.Errorf("no --node given and %w", err)
		}
		if addr, err = rpcDialAddr(cfg.RPC.ListenAddress); err != nil {
			return nodeClient{}, err
		}
		from = "rpc.laddr in " + path
	}
	// The scheme may be written in any case ("TCP://", as config takes in rpc.laddr); the
	// client knows the lower-case ones only, and would take "TCP" for a host name.
	if scheme, rest, ok := strings.Cut(strings.TrimSpace(addr), "://"); ok {
		switch l := strings.ToLower(scheme); l {
		case "tcp", "http", "https":
			addr = l + "://" + rest
		}
	}
	// An address that is no URL would fail every request before it is sent: say so here,
	// rather than let reach report a node that did not answer.
	if u, err := url.Parse(pubsubrpc.BaseURL(addr)); err != nil || u.Host == "" {
		msg := "no host"
		if err != nil {
			msg = err.Error()
		}
		return nodeClient{}, fmt.Errorf("%w: %s is not a node address (host:port, tcp://host:port or http://host:port): %s", errUsage, from, msg)
	}
	hc := &http.Client{Timeout: pubsubRequestTimeout}
	if stream {
		// No overall timeout, which would end the stream; but a request that gets no response
		// headers (every rpc.max_open_connections slot held, a wedged server) fails as pub's
		// and peers' do.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = pubsubRequestTimeout
		hc = &http.Client{Transport: tr}
	}
	return nodeClient{Client: &pubsubrpc.Client{Base: addr, HTTP: hc}, from: from}, nil
}

// rpcDialAddr turns rpc.laddr into an address to dial: an unspecified or empty host becomes
// the loopback address of its family.
func rpcDialAddr(laddr string) (string, error) {
	if laddr == "" {
		return "", fmt.Errorf("%w: rpc.laddr is empty in the config (the RPC server is off); use --node", errUsage)
	}
	host, port, err := config.ParseListenAddress(laddr)
	if err != nil {
		return "", fmt.Errorf("rpc.laddr: %w", err)
	}
	if port == 0 {
		return "", fmt.Errorf("%w: rpc.laddr %q has port 0 (a free port picked at start); use --node", errUsage, laddr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

func newPubSubPubCmd() *cobra.Command {
	var topic string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "pub --topic T [DATA]",
		Short: "Publish DATA (or standard input) on a topic",
		Long: `Publish one message on the topic through the node. The message is DATA as
given, or all of standard input when DATA is absent (Ctrl-C while it waits for
standard input publishes nothing and exits 130). It prints the message ID
and the number of peers that took it. It fails when no peer took it (no
connected peer is subscribed), when it is larger than max_message_size, or when
some peers' queues were full (the message still went to the others).`,
		Example: `  switchyard pubsub pub --topic chat "hello"
  switchyard pubsub pub --topic blobs --node 127.0.0.1:26657 < blob.bin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if topic == "" {
				return fmt.Errorf("%w: --topic is required", errUsage)
			}
			var data []byte
			if len(args) == 1 {
				data = []byte(args[0])
			} else {
				ctx := cmd.Context()
				b, err := readAllContext(ctx, io.LimitReader(cmd.InOrStdin(), config.MaxPubSubMessageBytes+1))
				if ctx.Err() != nil {
					// Ctrl-C while waiting on a terminal (DATA forgotten): the read cannot be cut
					// short, but the command need not wait for it.
					return &exitError{code: signalExitCode(ctx), err: errors.New("interrupted while reading the message from standard input; nothing was published")}
				}
				if err != nil {
					return fmt.Errorf("read standard input: %w", err)
				}
				data = b
			}
			c, err := pubsubClient(cmd, false)
			if err != nil {
				return err
			}
			res, err := c.Publish(cmd.Context(), topic, data)
			if err != nil {
				return c.reach(err)
			}
			if jsonOut {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s on %q to %d peers\n", res.ID, res.Topic, len(res.Peers))
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic to publish on (required)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the result as JSON")
	return cmd
}

// readAllContext is io.ReadAll(r), except that it returns ctx.Err() once ctx is done: the read
// itself goes on in a goroutine, which ends when r does (the process exits first).
func readAllContext(ctx context.Context, r io.Reader) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func newPubSubSubCmd() *cobra.Command {
	var topic string
	var jsonOut bool
	var count int
	cmd := &cobra.Command{
		Use:   "sub --topic T",
		Short: "Print each message of a topic as it arrives",
		Long: `Subscribe to the topic through the node (which joins it if it has not) and
print each message as it arrives: its data followed by a newline, or with
--json one JSON object per line (topic, id, from, origin, base64 data, direct,
received_at, dropped). It runs until Ctrl-C, until --count messages were
printed, or until the node stops (an error with --count, since fewer came).
With --count, Ctrl-C (SIGINT) or SIGTERM before the last message exits 130
(143 for SIGTERM), since fewer came; without it, Ctrl-C exits 0.
"subscribed" is printed on standard error once the node has confirmed the
subscription. A node that does not answer the request within 30 s is an error.`,
		Example: `  switchyard pubsub sub --topic chat
  switchyard pubsub sub --topic chat --json --count 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return fmt.Errorf("%w: --topic is required", errUsage)
			}
			if count < 0 {
				return fmt.Errorf("%w: --count must not be negative", errUsage)
			}
			c, err := pubsubClient(cmd, true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// interrupted is the end by Ctrl-C (or SIGTERM) after n messages: a normal exit, but
			// with --count it is cut short, as the crawl, sim and testnet commands are.
			interrupted := func(n int) error {
				if count == 0 {
					return nil
				}
				return &exitError{code: signalExitCode(ctx), err: fmt.Errorf("interrupted after %d of %d messages", n, count)}
			}
			st, err := c.Subscribe(ctx, topic)
			if err != nil {
				if ctx.Err() != nil {
					return interrupted(0) // Ctrl-C before the node confirmed the subscription
				}
				return c.reach(err)
			}
			defer st.Close()
			stop := context.AfterFunc(ctx, func() { _ = st.Close() })
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "subscribed to %q\n", topic)
			out := cmd.OutOrStdout()
			var dropped uint64
			for n := 0; count == 0 || n < count; n++ {
				m, err := st.Next()
				if err != nil {
					if ctx.Err() != nil {
						return interrupted(n) // Ctrl-C
					}
					if count > 0 && errors.Is(err, pubsubrpc.ErrStreamEnded) {
						return fmt.Errorf("the node ended the stream after %d of %d messages", n, count)
					}
					if errors.Is(err, pubsubrpc.ErrStreamEnded) {
						return nil // the node stopped
					}
					return err
				}
				if m.Dropped > dropped {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d messages dropped (reading too slowly)\n", m.Dropped-dropped)
					dropped = m.Dropped
				}
				if jsonOut {
					if err := writeJSONLine(out, m); err != nil {
						return err
					}
					continue
				}
				if _, err := out.Write(append(m.Data, '\n')); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic to subscribe to (required)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object per message")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many messages (0: run until Ctrl-C)")
	return cmd
}

func newPubSubPeersCmd() *cobra.Command {
	var topic string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "peers [--topic T]",
		Short: "List the peers a topic's messages go to (or every pub/sub peer)",
		Long: `With --topic, list the peers the node sends its own messages on the topic to
(gossipsub with flood publishing, the default: every subscribed peer at or above
the publish threshold; without it, the mesh; floodsub: every subscribed peer),
one per line with its score when gossipsub keeps scores; a topic the node has
not joined is an error. Without --topic, list every connected peer that speaks
pub/sub, with the topics whose lists it is in. It fails when the node's pub/sub is disabled or not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := pubsubClient(cmd, false)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return c.reach(err)
			}
			// GET /pubsub answers a node without pub/sub, or one whose pub/sub is starting or
			// stopping, with empty lists: say so rather than print "no peers".
			switch {
			case !st.Enabled:
				return errors.New("pub/sub is disabled on the node (set pubsub.enabled = true in config.toml)")
			case !st.Running:
				return errors.New("pub/sub is not running on the node (it is starting or stopping)")
			}
			peers := st.Peers
			if topic != "" {
				peers = peersOfTopic(st, topic)
				if peers == nil {
					return fmt.Errorf("the node has not joined topic %q (joined: %v)", topic, topicNames(st))
				}
			}
			if jsonOut {
				return writeJSON(cmd.OutOrStdout(), peers)
			}
			for _, p := range peers {
				score := "-"
				if p.Score != nil {
					score = strconv.FormatFloat(*p.Score, 'f', 3, 64)
				}
				if topic != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", p.ID, score)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s %v\n", p.ID, score, p.Topics)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "list only the peers of this topic")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the peers as JSON")
	return cmd
}

// peersOfTopic returns the Status peers listed for topic, in the topic's order; nil when the
// topic is not joined, empty when it has no peers.
func peersOfTopic(st pubsubrpc.Status, topic string) []pubsubrpc.Peer {
	byID := make(map[string]pubsubrpc.Peer, len(st.Peers))
	for _, p := range st.Peers {
		byID[p.ID] = p
	}
	for _, t := range st.Topics {
		if t.Name != topic {
			continue
		}
		out := make([]pubsubrpc.Peer, 0, len(t.Peers))
		for _, id := range t.Peers {
			p, ok := byID[id]
			if !ok {
				p = pubsubrpc.Peer{ID: id}
			}
			out = append(out, p)
		}
		return out
	}
	return nil
}

func topicNames(st pubsubrpc.Status) []string {
	out := make([]string, 0, len(st.Topics))
	for _, t := range st.Topics {
		out = append(out, t.Name)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// pubsubStartFlags are start's [pubsub] overrides.
type pubsubStartFlags struct {
	enabled        bool
	router, topics string
}

func addPubSubStartFlags(fl *pflag.FlagSet, f *pubsubStartFlags) {
	fl.BoolVar(&f.enabled, "pubsub.enabled", false, "run pub/sub (channels 0x70-0x72)")
	fl.StringVar(&f.router, "pubsub.router", "", "pub/sub router: gossipsub or floodsub")
	fl.StringVar(&f.topics, "pubsub.topics", "", `comma-separated topics to join, "name" or "name:rate"`)
}

// applyPubSubStartFlags copies the [pubsub] flags given on the command line into cfg.
func applyPubSubStartFlags(fl *pflag.FlagSet, f pubsubStartFlags, cfg *config.Config) {
	if fl.Changed("pubsub.enabled") {
		cfg.PubSub.Enabled = f.enabled
	}
	if fl.Changed("pubsub.router") {
		cfg.PubSub.Router = f.router
	}
	if fl.Changed("pubsub.topics") {
		cfg.PubSub.Topics = f.topics
	}
}
