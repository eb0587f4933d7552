package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// envPrefixes are the prefixes of the variables liverelay owns, those its settings
// start with up to the first '_' (LIVE_, and each provider's: PUSHER_, ABLY_,
// PIESOCKET_): a variable with one of them that is no setting is a mistake, never
// something to ignore.
func envPrefixes() []string {
	var prefixes []string
	for _, s := range settings() {
		prefix, _, _ := strings.Cut(s.env, "_")
		if prefix += "_"; !slices.Contains(prefixes, prefix) {
			prefixes = append(prefixes, prefix)
		}
	}
	return prefixes
}

// UnknownError is a variable with one of liverelay's prefixes that names no setting,
// most likely a misspelt one. Its value is never shown: it may be a secret.
type UnknownError struct {
	Env     string // the variable, e.g. LIVE_PROVIDR
	Closest string // the known setting nearest to it, e.g. LIVE_PROVIDER
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("%s is not a setting; did you mean %s? (worker run --help lists every setting)", e.Env, e.Closest)
}

// CheckEnv reports every variable of environ ("KEY=value" pairs, as os.Environ
// returns them) that starts with LIVE_, PUSHER_, ABLY_ or PIESOCKET_ but is not a
// setting, each an *UnknownError naming the closest setting, joined. The known names
// are those of the settings table (and <NAME>_FILE of each secret), so a new setting is known as soon as it is
// declared there.
func CheckEnv(environ []string) error {
	known := make([]string, 0, len(settings()))
	for _, s := range settings() {
		known = append(known, s.env)
		if s.secret {
			known = append(known, s.fileEnv())
		}
	}
	prefixes := envPrefixes()
	var errs []error
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(key, p) }) || slices.Contains(known, key) {
			continue
		}
		errs = append(errs, &UnknownError{Env: key, Closest: closest(key, known)})
	}
	slices.SortFunc(errs, func(a, b error) int {
		return strings.Compare(a.(*UnknownError).Env, b.(*UnknownError).Env)
	})
	return errors.Join(errs...)
}

// closest is the candidate with the least edit distance to s; ties go to the first.
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := distance(s, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b, with a swap of two neighbouring
// letters counted as one edit (LIVE_NATS_ULR is one edit from LIVE_NATS_URL).
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
