package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A variable with one of liverelay's prefixes that is no setting is reported with the
// closest setting, its value never shown; other variables and known settings pass.
func TestCheckEnv(t *testing.T) {
	tests := []struct {
		env  []string
		want []string // "UNKNOWN→CLOSEST"
	}{
		{[]string{"LIVE_PROVIDR=pusher"}, []string{"LIVE_PROVIDR→LIVE_PROVIDER"}},
		{[]string{"LIVE_NATS_ULR=nats://bob:hunter2@nats:4222"}, []string{"LIVE_NATS_ULR→LIVE_NATS_URL"}},
		{[]string{"PUSHER_APP_SECRT=hunter2", "ABLY_APIKEY=x", "PIESOCKET_CLUSTER=demo"},
			[]string{"ABLY_APIKEY→ABLY_API_KEY", "PIESOCKET_CLUSTER→PIESOCKET_CLUSTER_ID", "PUSHER_APP_SECRT→PUSHER_APP_SECRET"}},
		{[]string{"LIVE_PROVIDER=pusher", "PUSHER_APP_ID=1", "HOME=/root", "PATH=/bin", "LIVELY=1", "NATS_URL=x"}, nil},
		{[]string{"LIVE_BATCH_MAX_EVENTS=5", "LIVE_BATCH_MAX_EVENT=5"}, []string{"LIVE_BATCH_MAX_EVENT→LIVE_BATCH_MAX_EVENTS"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			err := CheckEnv(tt.env)
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var u *UnknownError
					if !errors.As(e, &u) {
						t.Fatalf("error %v is not an *UnknownError", e)
					}
					got = append(got, u.Env+"→"+u.Closest)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("a value reached the message: %v", err)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// Every setting of the table is known: a setting added there needs nothing else.
func TestCheckEnvKnowsEverySetting(t *testing.T) {
	var env []string
	for _, s := range Settings() {
		env = append(env, s.Env+"=x")
	}
	if err := CheckEnv(env); err != nil {
		t.Fatalf("a declared setting is unknown: %v", err)
	}
}

// TestEnvPrefixes: the prefixes CheckEnv guards are those the README names.
func TestEnvPrefixes(t *testing.T) {
	if got, want := envPrefixes(), []string{"LIVE_", "PUSHER_", "ABLY_", "PIESOCKET_"}; !slices.Equal(got, want) {
		t.Errorf("envPrefixes() = %v, want %v", got, want)
	}
}
