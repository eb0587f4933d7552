package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// LoadEnv overrides c with the variables lookup finds (os.LookupEnv in
// production). A string variable set to "" sets the setting to "" (so
// LIVE_HTTP_ADDR= disables the server); a number, duration or boolean set to
// "" keeps its current value. A secret may instead come from the file named by
// <NAME>_FILE, its trailing white space (the newline editors add) removed;
// setting both is an error, as is a file that cannot be read. Every problem is
// reported.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, s := range settings() {
		raw, ok := lookup(s.env)
		if s.secret {
			if path, set := lookup(s.fileEnv()); set && path != "" {
				if ok {
					errs = append(errs, &FieldError{Env: s.fileEnv(), Value: path,
						Reason: fmt.Sprintf("%s is set too: set the secret or the file that holds it, not both", s.env)})
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil {
					var pe *fs.PathError
					if errors.As(err, &pe) {
						err = pe.Err // the path is in the message already
					}
					errs = append(errs, &FieldError{Env: s.fileEnv(), Value: path,
						Reason: fmt.Sprintf("cannot read the file holding %s: %v", s.env, err)})
					continue
				}
				raw, ok = strings.TrimRight(string(b), " \t\r\n"), true
			}
		}
		if !ok {
			continue
		}
		if err := s.set(c, raw); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Bind registers one flag per setting on fs, defaulting to the value already
// in c, so flags override the environment.
func (c *Config) Bind(fs *pflag.FlagSet) {
	for _, s := range settings() {
		c.bind(fs, s)
	}
}

// BindSome registers the flags of the settings named by their environment
// variables (LIVE_NATS_URL, …), as Bind does: the operator commands take the
// settings they use, under the same names as `worker run`. An unknown name panics.
func (c *Config) BindSome(fs *pflag.FlagSet, envs ...string) {
	for _, env := range envs {
		i := slices.IndexFunc(settings(), func(s spec) bool { return s.env == env })
		if i < 0 {
			panic(fmt.Sprintf("config: no setting %s", env))
		}
		c.bind(fs, settings()[i])
	}
}

func (c *Config) bind(fs *pflag.FlagSet, s spec) {
	usage := fmt.Sprintf("%s [$%s]", s.help, s.env)
	switch p := s.field(c).(type) {
	case *string:
		if s.mask != nil {
			fs.Var(&maskedValue{p: p, mask: s.mask}, s.flag(), usage)
			return
		}
		fs.StringVar(p, s.flag(), *p, usage)
	case *int:
		fs.IntVar(p, s.flag(), *p, usage)
	case *bool:
		fs.BoolVar(p, s.flag(), *p, usage)
	case *time.Duration:
		fs.DurationVar(p, s.flag(), *p, usage)
	default:
		panic(fmt.Sprintf("config: setting %s has unsupported type %T", s.env, p))
	}
}

// set parses raw into the field, naming the variable on failure.
func (s spec) set(c *Config, raw string) error {
	trimmed := strings.TrimSpace(raw)
	switch p := s.field(c).(type) {
	case *string:
		*p = raw
		return nil
	case *int:
		if trimmed == "" {
			return nil
		}
		n, err := strconv.Atoi(trimmed)
		if err != nil {
			return s.invalid(raw, "want a whole number such as 16")
		}
		*p = n
	case *bool:
		if trimmed == "" {
			return nil
		}
		b, err := strconv.ParseBool(trimmed)
		if err != nil {
			return s.invalid(raw, "want true or false")
		}
		*p = b
	case *time.Duration:
		if trimmed == "" {
			return nil
		}
		d, err := time.ParseDuration(trimmed)
		if err != nil {
			return s.invalid(raw, "want a duration such as 50ms")
		}
		*p = d
	}
	return nil
}
