package sim

import (
	"errors"
	"testing"
	"time"
)

// TestScenarios: every built-in scenario parses and validates, its file name is its name,
// and the names the CLI promises exist.
func TestScenarios(t *testing.T) {
	want := []string{"baseline", "eclipse", "censorship", "degradation", "covert-flash", "attack-at-dawn",
		"cold-boot", "ip-colocation", "pex-eclipse", "partition", "churn"}
	have := map[string]Scenario{}
	for _, sc := range Scenarios() {
		have[sc.Name] = sc
		if sc.Description == "" {
			t.Errorf("%s: no description", sc.Name)
		}
	}
	for _, n := range want {
		if _, ok := have[n]; !ok {
			t.Errorf("scenario %q missing", n)
		}
	}
	sc := have["eclipse"]
	if sc.Attack == nil || sc.Attack.Sybils != 4000 || sc.Attack.Targets != 1 || sc.Attack.ConnectAt != 30*time.Second {
		t.Fatalf("eclipse decoded as %+v", sc.Attack)
	}
	if _, err := LoadScenario("nope"); !errors.Is(err, ErrUnknownScenario) {
		t.Fatalf("LoadScenario(nope) = %v", err)
	}
}

// TestParseScenarioRejects: unknown keys and invalid values are errors.
func TestParseScenarioRejects(t *testing.T) {
	for _, src := range []string{
		"name = \"x\"\nnodez = 10\n",
		"name = \"x\"\nnodes = -1\n",
		"name = \"x\"\n[link]\njitter = 1.5\n",
		"nodes = 10\n",
		"name = \"x\"\nduration = \"soon\"\n",
	} {
		if _, err := ParseScenario([]byte(src)); err == nil {
			t.Errorf("ParseScenario(%q) succeeded", src)
		}
	}
}
