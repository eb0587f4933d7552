package providertest

import (
	"fmt"
	"testing"
)

func TestFaults(t *testing.T) {
	var fs Faults[string, []string]
	if got := fs.Next(1, nil); got != "" {
		t.Fatalf("zero Faults answered %q", got)
	}

	var seen []string
	fs.SetScript(func(n int64, req []string) string {
		seen = append(seen, fmt.Sprint(n, req))
		if n%2 == 0 {
			return "even"
		}
		return ""
	})
	fs.FailNext(2, "down")
	var got []string
	for n := range int64(5) {
		got = append(got, fs.Next(n+1, []string{"m"}))
	}
	if fmt.Sprintf("%q", got) != `["down" "down" "" "even" ""]` {
		t.Errorf("answers %q: FailNext first, then the script", got)
	}
	if fmt.Sprint(seen) != "[3 [m] 4 [m] 5 [m]]" {
		t.Errorf("script saw %v, want requests 3 to 5", seen)
	}

	fs.SetScript(nil)
	if got := fs.Next(6, nil); got != "" {
		t.Errorf("without a script: %q", got)
	}
}
