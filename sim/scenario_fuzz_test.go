package sim

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// FuzzParseScenario: a scenario file is TOML an operator writes. ParseScenario never panics; its
// errors either wrap ErrInvalidConfig or are the TOML decoder's (prefixed "sim: scenario: "),
// and a scenario it accepts has a name and a valid Config.
func FuzzParseScenario(f *testing.F) {
	ents, err := fs.ReadDir(scenarioFS, "scenarios")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		b, err := scenarioFS.ReadFile("scenarios/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name = \"x\"\nduration = 30\n"))
	f.Add([]byte("name = \"x\"\n[gossip.params]\nheartbeat_interval = \"1s\"\n"))
	f.Add([]byte("name = \"x\"\n[gossip.params]\nHeartbeatInterval = 1\n"))
	f.Add([]byte("[attack]\nsybils = -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) && !strings.HasPrefix(err.Error(), "sim: scenario: ") {
				t.Fatalf("ParseScenario error %v", err)
			}
			return
		}
		if sc.Name == "" {
			t.Fatal("accepted a scenario without a name")
		}
		if err := sc.Config.Validate(); err != nil {
			t.Fatalf("accepted an invalid Config: %v", err)
		}
	})
}
