package harness

import (
	"slices"
	"testing"
)

func TestMatrixVersions(t *testing.T) {
	const pinned = "v0.38.26"
	for spec, want := range map[string][]string{
		"":                        {pinned, "v0.40.0", "v1.0.1"},
		"default":                 {pinned, "v0.40.0", "v1.0.1"},
		"pinned":                  {pinned},
		"all":                     {pinned, "v0.37.18", "v0.40.0", "v1.0.1"},
		"1.0.1":                   {"v1.0.1"},
		"v1.0.1, pinned":          {pinned, "v1.0.1"},
		"v0.37.18 v0.37.18,all":   {pinned, "v0.37.18", "v0.40.0", "v1.0.1"},
		"v1.0.0-rc1":              {"v1.0.0-rc1"},
		"pinned v0.38.26 default": {pinned, "v0.40.0", "v1.0.1"},
	} {
		t.Setenv("INTEROP_VERSIONS", spec)
		got, err := MatrixVersions(pinned)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("INTEROP_VERSIONS=%q: got %v, %v; want %v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"latest", "v1", "1.0", ",", "v1.0.1;v0.38.26"} {
		t.Setenv("INTEROP_VERSIONS", spec)
		if got, err := MatrixVersions(pinned); err == nil {
			t.Errorf("INTEROP_VERSIONS=%q: got %v, want an error", spec, got)
		}
	}
}
