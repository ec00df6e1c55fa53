package testnet

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

// FuzzParseMetrics: the /metrics text of a node the testnet polls. parseMetrics never panics,
// fails only with a line longer than its buffer (bufio.ErrTooLong), and every sample it returns
// is named by a line of the input.
func FuzzParseMetrics(f *testing.F) {
	f.Add(`# HELP cometbft_p2p_messages_sent_total x
# TYPE cometbft_p2p_messages_sent_total counter
cometbft_p2p_messages_sent_total{ch="0x00"} 12
cometbft_p2p_messages_sent_total{ch="0x40"} 3
cometbft_p2p_message_send_bytes_total{ch="0x00"} 1.5e+03 1700000000
go_goroutines 7
`)
	f.Add("a{b=\"}\"} 1\n}\n{ 2\nx NaN\ny +Inf\n z  -1 \n")
	f.Add("only_a_name\n\n#\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetrics(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, bufio.ErrTooLong) {
				t.Fatalf("parseMetrics error %v", err)
			}
			return
		}
		for name := range m {
			if name == "" || !strings.Contains(s, name) {
				t.Fatalf("sample %q is not in the input", name)
			}
		}
	})
}
