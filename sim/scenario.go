package sim

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

//go:embed scenarios/*.toml
var scenarioFS embed.FS

// ErrUnknownScenario is wrapped by LoadScenario's error for a name it does not know.
var ErrUnknownScenario = errors.New("sim: unknown scenario")

// Scenario is a named, described Config: one small TOML file under scenarios/ (embedded in
// the binary), whose keys are Config's fields in snake case (durations as strings such as
// "30s"):
//
//	name = "eclipse"
//	description = "..."
//	nodes = 1000
//	duration = "120s"
//	[topology]
//	kind = "random"
//	degree = 8
//	[attack]
//	sybils = 4000
//	targets = 1
type Scenario struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	Config
}

// ParseScenario decodes a scenario from TOML. Unknown keys are an error (a typo must not
// silently change a run); the Config is validated.
func ParseScenario(b []byte) (Scenario, error) {
	var sc Scenario
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&sc)
	if err != nil {
		return sc, fmt.Errorf("sim: scenario: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return sc, fmt.Errorf("%w: scenario %q: unknown keys %s", ErrInvalidConfig, sc.Name, strings.Join(keys, ", "))
	}
	if sc.Name == "" {
		return sc, fmt.Errorf("%w: scenario without a name", ErrInvalidConfig)
	}
	if err := sc.Config.Validate(); err != nil {
		return sc, fmt.Errorf("scenario %q: %w", sc.Name, err)
	}
	return sc, nil
}

// Scenarios returns the built-in scenarios, sorted by name.
func Scenarios() []Scenario {
	ents, err := fs.ReadDir(scenarioFS, "scenarios")
	if err != nil {
		panic(err) // embedded
	}
	var out []Scenario
	for _, e := range ents {
		b, err := scenarioFS.ReadFile("scenarios/" + e.Name())
		if err != nil {
			panic(err)
		}
		sc, err := ParseScenario(b)
		if err != nil {
			panic(fmt.Sprintf("sim: built-in scenario %s: %v", e.Name(), err)) // tested
		}
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b Scenario) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LoadScenario returns the built-in scenario name; the error wraps ErrUnknownScenario and
// lists the names.
func LoadScenario(name string) (Scenario, error) {
	var names []string
	for _, sc := range Scenarios() {
		if sc.Name == name {
			return sc, nil
		}
		names = append(names, sc.Name)
	}
	return Scenario{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownScenario, name, strings.Join(names, ", "))
}

// Resize returns the scenario's Config for nodes honest nodes and sybils sybils (0 keeps
// the scenario's numbers), scaling the parts that are counts of nodes with it: publishers
// and churn counts in proportion (at least 1), sybil IP addresses in proportion to the
// sybils. A scenario without an attack ignores sybils.
func (sc Scenario) Resize(nodes, sybils int) Config {
	c := sc.Config
	if nodes > 0 && nodes != c.Nodes {
		old := c.Nodes
		if old == 0 {
			old = DefaultNodes
		}
		scale := func(k int) int {
			if k == 0 {
				return 0
			}
			return max(1, k*nodes/old)
		}
		c.Gossip.Publishers = min(scale(c.Gossip.Publishers), nodes)
		c.Churn = slices.Clone(c.Churn)
		for i := range c.Churn {
			c.Churn[i].Count = scale(c.Churn[i].Count)
		}
		c.Nodes = nodes
	}
	if c.Attack != nil {
		a := *c.Attack
		if sybils > 0 && sybils != a.Sybils && a.Sybils > 0 && a.SybilIPs > 0 {
			a.SybilIPs = max(1, a.SybilIPs*sybils/a.Sybils)
		}
		if sybils > 0 {
			a.Sybils = sybils
		}
		c.Attack = &a
	}
	return c
}
