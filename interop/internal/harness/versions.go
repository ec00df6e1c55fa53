package harness

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// MatrixReleases are the CometBFT releases the interop version matrix knows:
// the last v0.37 release, the pinned v0.38 release, the newest release of the
// v0.38 line's successors (v0.40.0, July 2026; it reports itself as 0.39.0)
// and the newest v1 release (v1.0.1, the highest version on the module
// proxy). INTEROP_VERSIONS=all selects them all.
var MatrixReleases = []string{"v0.37.18", "v0.38.26", "v0.40.0", "v1.0.1"}

// DefaultMatrix is what runs when INTEROP_VERSIONS is unset or "default": the
// pinned release and the newest ones, v0.40.0 (the newest release) and v1.0.1
// (the highest version).
var DefaultMatrix = []string{"pinned", "v0.40.0", "v1.0.1"}

var versionRE = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

// MatrixVersions returns the CometBFT module versions to test against, from
// the environment variable INTEROP_VERSIONS: a comma- or space-separated list
// of versions ("v1.0.1" or "1.0.1"), "pinned" for the version interop/go.mod
// requires, "all" for MatrixReleases, or "default" (also when unset) for
// DefaultMatrix. The result has no duplicates, keeps the given order, and
// always starts with pinned if pinned is in it.
func MatrixVersions(pinned string) ([]string, error) {
	spec := strings.TrimSpace(os.Getenv("INTEROP_VERSIONS"))
	if spec == "" {
		spec = "default"
	}
	var out []string
	add := func(v string) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, f := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		switch f {
		case "default":
			for _, v := range DefaultMatrix {
				if v == "pinned" {
					v = pinned
				}
				add(v)
			}
		case "all":
			for _, v := range MatrixReleases {
				add(v)
			}
		case "pinned":
			add(pinned)
		default:
			if !versionRE.MatchString(f) {
				return nil, fmt.Errorf("INTEROP_VERSIONS=%q: %q is not a version (want e.g. v1.0.1, pinned, all or default)", spec, f)
			}
			if !strings.HasPrefix(f, "v") {
				f = "v" + f
			}
			add(f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("INTEROP_VERSIONS=%q selects no version", spec)
	}
	if i := slices.Index(out, pinned); i > 0 {
		out = append([]string{pinned}, slices.Delete(out, i, i+1)...)
	}
	return out, nil
}
