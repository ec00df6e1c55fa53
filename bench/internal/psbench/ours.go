package psbench

import (
	"context"
	"errors"
)

// StackOurs is Switchyard's stack name in results.
const StackOurs = "switchyard"

// BuildOurs is the Builder for Switchyard's pubsub.Server on p2p.Switch.
func BuildOurs(ctx context.Context, sc Scenario, router Router, deliver DeliverFunc) (Net, error) {
	return nil, errors.New("switchyard: pubsub.Server not merged yet")
}
