package sim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
)

// TestScenarios: every built-in scenario parses and validates, its file name is its name,
// and the names the CLI promises exist.
func TestScenarios(t *testing.T) {
	want := []string{"baseline", "eclipse", "censorship", "degradation", "covert-flash", "attack-at-dawn",
		"cold-boot", "ip-colocation", "pex-eclipse", "partition", "churn", "covert-flash-heard"}
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

// TestParseScenarioRefusesDurationsWithoutUnit: a duration written as a bare number (which
// the TOML decoder would take as nanoseconds) is refused wherever it appears, naming the
// key: top level, tables, arrays of tables, arrays of arrays and the gossipsub parameters.
// Quoted durations with a unit are accepted there.
func TestParseScenarioRefusesDurationsWithoutUnit(t *testing.T) {
	for _, c := range []struct{ src, key string }{
		{"name = \"x\"\nnodes = 10\nduration = 60\n", "duration"},
		{"name = \"x\"\n[link]\nlatency = 25\n", "link.latency"},
		{"name = \"x\"\n[gossip]\nstart = 5\n", "gossip.start"},
		{"name = \"x\"\n[gossip]\nstart = 5.5\n", "gossip.start"},
		{"name = \"x\"\nnodes = 10\n[[churn]]\nkind = \"crash\"\nat = \"10s\"\ncount = 1\n[[churn]]\nkind = \"crash\"\nat = \"20s\"\nevery = 5\ncount = 1\n", "churn.every"},
		{"name = \"x\"\n[link]\nregions = [{name = \"a\", share = 1}]\nregion_latency = [[25]]\n", "link.region_latency"},
		{"name = \"x\"\n[gossip.params]\nheartbeatinterval = 700\n", "gossip.params.heartbeatinterval"},
	} {
		_, err := ParseScenario([]byte(c.src))
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("ParseScenario(%q) = %v, want ErrInvalidConfig naming %s", c.src, err, c.key)
		}
	}
	sc, err := ParseScenario([]byte("name = \"x\"\nnodes = 10\nduration = \"60s\"\n[link]\nregions = [{name = \"a\", share = 1}]\nregion_latency = [[\"25ms\"]]\n[gossip.params]\nheartbeatinterval = \"700ms\"\n[[churn]]\nkind = \"crash\"\nat = \"20s\"\nevery = \"5s\"\ncount = 1\n"))
	if err != nil || sc.Duration != time.Minute || sc.Link.RegionLatency[0][0] != 25*time.Millisecond ||
		sc.Gossip.Params.HeartbeatInterval != 700*time.Millisecond || sc.Churn[0].Every != 5*time.Second {
		t.Errorf("quoted durations: %+v, %v", sc.Config, err)
	}
}

// TestValidateRefusesTinyPeriods: a repeating churn event or sampler period below 1 ms is
// refused (it would schedule an action or a sample for every few nanoseconds of the run).
func TestValidateRefusesTinyPeriods(t *testing.T) {
	for i, cfg := range []Config{
		{Churn: []ChurnEvent{{Kind: ChurnCrash, At: time.Second, Every: 5, Count: 1}}},
		{SampleEvery: 999 * time.Microsecond},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d (churn every %v, sample every %v): Validate = %v, want ErrInvalidConfig",
				i, cfg.Churn, cfg.SampleEvery, err)
		}
	}
	ok := Config{Churn: []ChurnEvent{{Kind: ChurnCrash, At: time.Second, Every: time.Millisecond, Count: 1}}, SampleEvery: time.Millisecond}
	if err := ok.Validate(); err != nil {
		t.Errorf("periods of 1 ms: %v", err)
	}
}

// TestValidateRefusesNegativePEXPeriod: a negative AddrBook.Every (PEX's ensurePeers period,
// which pex.NewCore refuses) is an ErrInvalidConfig from ParseScenario, not a panic when the
// first node boots.
func TestValidateRefusesNegativePEXPeriod(t *testing.T) {
	src := "name = \"x\"\nnodes = 3\nduration = \"2s\"\n[addr_book]\nenabled = true\nevery = \"-1s\"\n"
	_, err := ParseScenario([]byte(src))
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("ParseScenario(addr_book.every = \"-1s\") = %v, want ErrInvalidConfig", err)
	}
}

// TestValidateRefusesTinyPEXPeriod: an AddrBook.Every (PEX's ensurePeers period) below 1 ms
// is refused, as the churn and sampler periods are: every PEX node would run ensurePeers every
// few nanoseconds of the run (5 nodes at 10 µs: 566,000 events in 1.5 s of virtual time).
func TestValidateRefusesTinyPEXPeriod(t *testing.T) {
	cfg := Config{AddrBook: AddrBook{Enabled: true, Every: 999 * time.Microsecond}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("AddrBook.Every %v: Validate = %v, want ErrInvalidConfig", cfg.AddrBook.Every, err)
	}
	cfg.AddrBook.Every = time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Errorf("AddrBook.Every %v: %v", cfg.AddrBook.Every, err)
	}
}

// TestValidateRefusesBadScoreParameters: score parameters, thresholds or topic score
// parameters that gossipsub.New refuses are an ErrInvalidConfig from ParseScenario, not a
// panic when the first honest node boots.
func TestValidateRefusesBadScoreParameters(t *testing.T) {
	for _, src := range []string{
		"name = \"x\"\nnodes = 3\n[gossip.thresholds]\ngossipthreshold = 5.0\n",
		"name = \"x\"\nnodes = 3\n[gossip.score]\ndecayinterval = \"-1s\"\n",
		"name = \"x\"\nnodes = 3\n[gossip.topic_score]\ntopicweight = -1.0\n",
	} {
		if _, err := ParseScenario([]byte(src)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseScenario(%q) = %v, want ErrInvalidConfig", src, err)
		}
	}
	// The same under floodsub, which does not score: accepted.
	cfg := Config{Nodes: 3, Gossip: Gossip{Router: RouterFloodSub, Thresholds: &gossipsub.Thresholds{GossipThreshold: 5}}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("floodsub with unused thresholds: %v", err)
	}
}
