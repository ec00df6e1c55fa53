package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// configKeys returns every dotted TOML key of Config, from the struct tags: the keys Load
// accepts, so the keys the node reads.
func configKeys(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() != "time" {
			out = append(out, configKeys(f.Type, prefix+tag+".")...)
			continue
		}
		out = append(out, prefix+tag)
	}
	return out
}

// renderedDefaults returns each key's default as config.toml spells it (the value
// WriteConfigFile writes for DefaultConfig), e.g. `"3s"`, `40`, `true`.
func renderedDefaults(t *testing.T) map[string]string {
	t.Helper()
	out, err := Render(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(out), &m); err != nil {
		t.Fatal(err)
	}
	flat := make(map[string]string)
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			switch v := v.(type) {
			case map[string]any:
				walk(prefix+k+".", v)
			case string:
				flat[prefix+k] = strconv.Quote(v)
			default:
				flat[prefix+k] = fmt.Sprint(v)
			}
		}
	}
	walk("", m)
	return flat
}

// readmeRow matches a row of README.md's config table: | `key` | default | meaning |.
var readmeRow = regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\| ([^|]*?) \\|")

// TestReadmeConfigTable checks that README.md's "Configuration" table lists every key Config
// reads, no other key, and each key's default as config.toml spells it (moniker's default is the
// host name, so only its presence is checked).
func TestReadmeConfigTable(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	rows := make(map[string]string)
	for _, m := range readmeRow.FindAllStringSubmatch(sec, -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README lists %q twice", m[1])
		}
		rows[m[1]] = strings.Trim(strings.TrimSpace(m[2]), "`")
	}
	defaults := renderedDefaults(t)
	keys := configKeys(reflect.TypeFor[Config](), "")
	if len(keys) != len(defaults) {
		t.Errorf("struct has %d keys, config.toml template %d", len(keys), len(defaults))
	}
	for _, k := range keys {
		got, ok := rows[k]
		switch {
		case !ok:
			t.Errorf("README config table lacks key %q (default %s)", k, defaults[k])
		case k == "moniker":
		case got != defaults[k]:
			t.Errorf("README default of %q = %s, want %s", k, got, defaults[k])
		}
		delete(rows, k)
	}
	extra := make([]string, 0, len(rows))
	for k := range rows {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("README config table lists keys Config does not read: %v", extra)
	}
}
