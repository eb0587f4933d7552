package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/liverelay/liverelay/internal/config"
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

// "worker --help" lists the commands, not the settings.
func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		var out, errOut bytes.Buffer
		if code := dispatch(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
		for _, cmd := range []string{"run", "emit", "dlq", "replay", "status", "bench", "version", "completion"} {
			if !strings.Contains(out.String(), "\n  "+cmd+" ") {
				t.Errorf("%v does not list %q:\n%s", args, cmd, out.String())
			}
		}
		if strings.Contains(out.String(), "--batch-window") {
			t.Errorf("%v lists the settings instead of pointing to worker run --help:\n%s", args, out.String())
		}
	}
}

// Every flag of every command that stands for a setting has the name and the help of
// that setting in "worker run": one vocabulary, from the settings table.
func TestFlagsShareTheSettingsVocabulary(t *testing.T) {
	byEnv := map[string]config.Setting{}
	for _, s := range config.Settings() {
		byEnv[s.Env] = s
	}
	root := newRoot(context.Background(), env{cfg: config.Default()}, io.Discard, io.Discard)
	var walk func(*cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if _, old := f.Annotations[aliasOf]; old {
				return
			}
			for envName, s := range byEnv {
				if strings.Contains(f.Usage, "[$"+envName+"]") {
					seen++
					if f.Name != s.Flag {
						t.Errorf("%s --%s reads $%s, whose flag is --%s", c.CommandPath(), f.Name, envName, s.Flag)
					}
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, cmd := range []string{"emit", "dlq list", "dlq show", "replay", "status"} {
		c, _, err := root.Find(strings.Fields(cmd))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"nats-url", "nats-creds", "nats-token", "nats-tls-ca", "embedded-listen"} {
			if c.Flags().Lookup(name) == nil {
				t.Errorf("worker %s has no --%s", cmd, name)
			}
		}
	}
	for _, tt := range []struct{ cmd, flag string }{
		{"emit", "subject-prefix"}, {"dlq list", "dlq-stream"}, {"dlq show", "dlq-prefix"},
		{"replay", "stream"}, {"replay", "subject-prefix"}, {"status", "stream"},
		{"bench", "batch-window"}, {"bench", "publish-concurrency"}, {"bench", "embedded-sync"},
	} {
		c, _, _ := root.Find(strings.Fields(tt.cmd))
		if c.Flags().Lookup(tt.flag) == nil {
			t.Errorf("worker %s has no --%s", tt.cmd, tt.flag)
		}
	}
	if seen < len(byEnv) {
		t.Errorf("only %d setting flags found, fewer than the %d settings of worker run", seen, len(byEnv))
	}
}

// The operator commands' old flag names still work, hidden and with a warning, and so
// do single-dash long flags as Go's flag package took them.
func TestFlagOldNamesStillWork(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"status", "--nats", "nats://127.0.0.1:1"}, "--nats is deprecated; use --nats-url"},
		{[]string{"dlq", "list", "-nats-url", "nats://127.0.0.1:1"}, "127.0.0.1:1"},
		{[]string{"emit", "--channel", "c", "--prefix", "p", "--nats", "nats://127.0.0.1:1"}, "--prefix is deprecated; use --subject-prefix"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			checkFails(t, tt.args, 1, tt.want) // 1: the server is unreachable
		})
	}
	var out, errOut bytes.Buffer
	dispatch(context.Background(), []string{"status", "--help"}, &out, &errOut)
	if strings.Contains(out.String(), "--nats ") || strings.Contains(out.String(), "--prefix") {
		t.Errorf("status --help shows a deprecated name:\n%s", out.String())
	}
}

// "worker" without a command takes the flags of "worker run" and checks them the same
// way; bad flags and arguments exit 2 naming them.
func TestFlagErrorsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--partitions", "2000"}, "LIVE_PARTITIONS"},
		{[]string{"--batch-window", "abc"}, `"--batch-window"`},
		{[]string{"run", "--colour"}, "unknown flag: --colour"},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
		{[]string{"bench", "--rate", "-1"}, "--rate"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			checkFails(t, tt.args, 2, tt.want)
		})
	}
}

// checkFails runs the worker with args and checks that it exits with code and says
// want on stderr.
func checkFails(t *testing.T, args []string, code int, want string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if got := dispatch(context.Background(), args, &out, &errOut); got != code {
		t.Fatalf("exit %d, want %d; stderr %q", got, code, errOut.String())
	}
	if !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, errOut.String())
	}
}

// "worker completion SHELL" prints a completion script naming the commands.
func TestHelpCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := dispatch(context.Background(), []string{"completion", shell}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", shell, code, errOut.String())
		}
		if !strings.Contains(out.String(), "worker") {
			t.Errorf("%s: no completion script:\n%.300s", shell, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), []string{"__complete", "dlq", "list", "--dlq-s"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--dlq-stream") {
		t.Errorf("completing --dlq-s: exit %d, stdout %q", code, out.String())
	}
}
