package sim

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

//go:embed scenarios/*.toml
var scenarioFS embed.FS

// ErrUnknownScenario is wrapped by LoadScenario's error for a name it does not know.
var ErrUnknownScenario = errors.New("sim: unknown scenario")

// Scenario is a named, described Config: one small TOML file under scenarios/ (embedded in
// the binary), whose keys are Config's fields in snake case (durations as quoted strings
// with a unit, such as "30s"; a bare number is refused). The exception is gossipsub's own
// structs under [gossip.params], [gossip.score], [gossip.topic_score] and
// [gossip.thresholds]: they have no TOML names, so their keys are the Go field names,
// matched ignoring case and without underscores (heartbeatinterval or HeartbeatInterval;
// heartbeat_interval is an unknown key):
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
// silently change a run), and so is a duration written as a bare number (the decoder would
// take it as nanoseconds); the Config is validated. Every error but a TOML syntax or type
// error wraps ErrInvalidConfig.
func ParseScenario(b []byte) (Scenario, error) {
	var sc Scenario
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return sc, fmt.Errorf("sim: scenario: %w", err)
	}
	if k := bareDuration(raw, reflect.TypeFor[Scenario](), ""); k != "" {
		name, _ := raw["name"].(string)
		return sc, fmt.Errorf("%w: scenario %q: %s: a duration must be a quoted string with a unit, such as \"30s\" or \"500ms\", not a bare number",
			ErrInvalidConfig, name, k)
	}
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

var durationType = reflect.TypeFor[time.Duration]()

// bareDuration returns the key (dotted, from the top) of the first value in v, in key order,
// that the TOML decoder would store in a time.Duration of t but is not a string; "" if
// there is none. It follows the decoder's matching of keys to fields (the toml tag, else
// the field name, exactly or ignoring case; embedded structs' fields are promoted) and
// ignores keys without a field (the decoder reports those as undecoded).
func bareDuration(v any, t reflect.Type, key string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		if _, ok := v.(string); !ok {
			return key
		}
		return ""
	}
	rv := reflect.ValueOf(v)
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f, ok := tomlField(t, k)
			if !ok {
				continue
			}
			if bad := bareDuration(m[k], f.Type, joinKey(key, k)); bad != "" {
				return bad
			}
		}
	case reflect.Slice, reflect.Array:
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return ""
		}
		for i := range rv.Len() {
			if bad := bareDuration(rv.Index(i).Interface(), t.Elem(), key); bad != "" {
				return bad
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if bad := bareDuration(m[k], t.Elem(), joinKey(key, k)); bad != "" {
				return bad
			}
		}
	}
	return ""
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// tomlField finds the field of struct t that the TOML decoder fills from key k: the one
// named k (by its toml tag or, without a tag, its Go name), else one whose name matches k
// ignoring case.
func tomlField(t reflect.Type, k string) (reflect.StructField, bool) {
	var fold reflect.StructField
	found := false
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("toml") == "" && f.Type.Kind() == reflect.Struct {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == k {
			return f, true
		}
		if !found && strings.EqualFold(name, k) {
			fold, found = f, true
		}
	}
	return fold, found
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
