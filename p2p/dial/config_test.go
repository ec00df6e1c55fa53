package dial

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected error; nil: valid
	}{
		{"zero", Config{}, nil},
		{"defaults", DefaultConfig(), nil},
		{"no jitter", Config{JitterMax: -1}, nil},
		{"max equals base", Config{BaseBackoff: time.Minute, MaxBackoff: time.Minute}, nil},
		{"max from default base", Config{MaxBackoff: 500 * time.Millisecond}, []string{"MaxBackoff 500ms is below BaseBackoff 1s"}},
		{"base above default max", Config{BaseBackoff: time.Hour}, []string{"MaxBackoff 5m0s is below BaseBackoff 1h0m0s"}},
		{"negative ints", Config{MaxInFlight: -1, MaxOutbound: -2, MaxAttempts: -3}, []string{
			"MaxInFlight -1 is negative", "MaxOutbound -2 is negative", "MaxAttempts -3 is negative"}},
		{"negative durations", Config{BaseBackoff: -time.Second, MaxBackoff: -time.Second}, []string{
			"BaseBackoff -1s is negative", "MaxBackoff -1s is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			err := tt.cfg.Validate()
			if tt.cfg != before {
				t.Fatal("Validate mutated the config")
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if _, err := New(tt.cfg, newRand(1)); err != nil {
					t.Fatalf("New = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want errors")
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != len(tt.want) {
				t.Fatalf("Validate = %q, want %d joined errors", err, len(tt.want))
			}
			for i, w := range tt.want {
				if got := joined.Unwrap()[i].Error(); !strings.HasPrefix(got, "dial: ") || !strings.Contains(got, w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got, w)
				}
			}
			if _, nerr := New(tt.cfg, newRand(1)); nerr == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestNewNilRand(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("New(cfg, nil) = nil error")
	}
}

func TestConfigBackoff(t *testing.T) {
	def := Config{}
	tests := []struct {
		cfg   Config
		retry int
		want  time.Duration
	}{
		{def, -1, 0},
		{def, 0, 0},
		{def, 1, time.Second},
		{def, 2, 2 * time.Second},
		{def, 9, 256 * time.Second},
		{def, 10, 5 * time.Minute}, // 512 s capped
		{def, 1 << 30, 5 * time.Minute},
		{Config{BaseBackoff: 3 * time.Second, MaxBackoff: 10 * time.Second}, 2, 6 * time.Second},
		{Config{BaseBackoff: 3 * time.Second, MaxBackoff: 10 * time.Second}, 3, 10 * time.Second},
		{Config{BaseBackoff: time.Duration(1) << 61, MaxBackoff: time.Duration(1<<63 - 1)}, 5, time.Duration(1<<63 - 1)},
	}
	for _, tt := range tests {
		if got := tt.cfg.Backoff(tt.retry); got != tt.want {
			t.Errorf("%+v.Backoff(%d) = %v, want %v", tt.cfg, tt.retry, got, tt.want)
		}
	}
}
