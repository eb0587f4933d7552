package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEverySetting keeps the README's configuration table in step with the
// code: every setting the worker reads is documented there, with its flag.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		if !strings.Contains(string(readme), "`"+s.Env+"`") {
			t.Errorf("README.md does not document %s", s.Env)
		}
		if row := "| `" + s.Env + "` | `--" + s.Flag + "` |"; !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row %q: the flag of %s is --%s", row, s.Env, s.Flag)
		}
	}
}
