package pex

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// childMains are other entry points of this test binary, chosen by a non-empty environment
// variable (the key) and given its value: a test re-runs the binary in another role, e.g. as
// another user (TestUnreadableBookNotOverwritten). The function's result is the exit code.
var childMains = map[string]func(val string) int{}

func TestMain(m *testing.M) {
	for env, f := range childMains {
		if v := os.Getenv(env); v != "" {
			os.Exit(f(v))
		}
	}
	goleak.VerifyTestMain(m)
}
