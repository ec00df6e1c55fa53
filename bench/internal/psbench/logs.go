package psbench

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/libp2p/go-libp2p/gologshim"
)

// QuietLibp2pLogs routes go-libp2p's logs to stderr at level warn and above, minus the one
// error the counting dialer causes: manet wraps a custom dialer's conn in a type without
// SetKeepAlive, so go-libp2p's TCP transport logs "can't set TCP keepalives" for every dialed
// connection. Keepalives do not matter in a run of seconds. Call it before building any host.
func QuietLibp2pLogs() {
	gologshim.SetDefaultHandler(dropKeepAliveHandler{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})})
}

type dropKeepAliveHandler struct{ slog.Handler }

func (h dropKeepAliveHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "TCP keepalive") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h dropKeepAliveHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return dropKeepAliveHandler{h.Handler.WithAttrs(a)}
}

func (h dropKeepAliveHandler) WithGroup(g string) slog.Handler {
	return dropKeepAliveHandler{h.Handler.WithGroup(g)}
}
