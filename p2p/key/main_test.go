package key

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		crashHelper(path) // the child of TestR07KillDuringGeneration; never returns
	}
	goleak.VerifyTestMain(m)
}
