package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A bad setting stops start-up with exit code 2 and a message naming the setting and
// what it allows; nothing is started.
func TestBadSettingsStopStartUp(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"unparsable duration", map[string]string{"LIVE_BATCH_WINDOW": "abc"}, nil, []string{"LIVE_BATCH_WINDOW", "duration"}},
		{"unknown provider", map[string]string{"LIVE_PROVIDER": "kafka"}, nil, []string{"LIVE_PROVIDER", `"pusher"`, `"ably"`}},
		{"pusher without credentials", map[string]string{"LIVE_PROVIDER": "pusher"}, nil, []string{"PUSHER_APP_ID", "PUSHER_APP_SECRET"}},
		{"partitions out of range, by flag", nil, []string{"run", "--partitions", "2000"}, []string{"LIVE_PARTITIONS"}},
		{"secret never echoed", map[string]string{"LIVE_PROVIDER": "pusher", "PUSHER_APP_SECRET": "hunter2", "PUSHER_APP_ID": "1"}, nil, []string{"PUSHER_APP_KEY"}},
		{"misspelt setting", map[string]string{"LIVE_PROVIDR": "pusher"}, nil, []string{"LIVE_PROVIDR", "LIVE_PROVIDER"}},
		{"misspelt NATS URL, value never echoed", map[string]string{"LIVE_NATS_ULR": "nats://bob:hunter2@nats:4222"}, nil, []string{"LIVE_NATS_ULR", "LIVE_NATS_URL"}},
		{"misspelt provider setting", map[string]string{"PUSHER_APP_SECRT": "hunter2"}, nil, []string{"PUSHER_APP_SECRT", "PUSHER_APP_SECRET"}},
		{"embedded server open to the network without auth", map[string]string{"LIVE_EMBEDDED_LISTEN": "0.0.0.0:4222"}, nil,
			[]string{"LIVE_EMBEDDED_LISTEN", "LIVE_EMBEDDED_TOKEN", "LIVE_EMBEDDED_USER"}},
		{"secret and its file both set", map[string]string{"LIVE_EMBEDDED_TOKEN": "hunter2", "LIVE_EMBEDDED_TOKEN_FILE": "/nonexistent"}, nil,
			[]string{"LIVE_EMBEDDED_TOKEN_FILE", "LIVE_EMBEDDED_TOKEN is set too"}},
		{"unknown setting of the operator commands", map[string]string{"LIVE_DLQ_STREM": "X"}, []string{"dlq", "list"}, []string{"LIVE_DLQ_STREM", "LIVE_DLQ_STREAM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			args := tt.args
			if args == nil {
				args = []string{"run"}
			}
			code := dispatch(context.Background(), args, &out, &errOut)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr: %s", code, errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr does not mention %q:\n%s", w, errOut.String())
				}
			}
			if strings.Contains(errOut.String(), "hunter2") {
				t.Errorf("a secret reached stderr:\n%s", errOut.String())
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if code := dispatch(context.Background(), []string{"version"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "liverelay worker") {
		t.Fatalf("version: exit %d, stdout %q", code, out.String())
	}
}
