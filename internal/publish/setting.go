package publish

import "fmt"

// Setting declares one setting of a provider: the environment variable that sets it
// and the field of the provider's configuration it fills. Each provider declares its
// settings in one table beside its configuration (PusherSettings, AblySettings,
// PieSocketSettings), and internal/config composes those tables into the worker's
// settings: the flag (derived from Env), --help, the README table test, masking, and
// reading a secret from <Env>_FILE all follow from the row.
//
// Adding a provider setting is therefore one file, the provider's *_config.go: a
// field of its configuration, the field's row in its table, its default in its
// Default…Config function unless that is the zero value, and its check in Validate.
// Then a row in the README's configuration table (a test fails without it).
type Setting[C any] struct {
	Env  string // environment variable, e.g. PUSHER_APP_ID; its flag is --pusher-app-id
	Help string // one line, for --help and the README
	// Secret marks a credential: it is masked wherever the configuration is shown, and
	// can also be read from the file named by Env+"_FILE".
	Secret bool
	// Address marks a host or URL that may carry user:password@: those credentials are
	// masked wherever the configuration is shown.
	Address bool
	// Field points at the setting in a configuration: a *string, *int, *bool or
	// *time.Duration.
	Field func(*C) any
}

// envProviderTimeout is the setting every provider's Timeout comes from. The worker's
// configuration declares it, as it is shared by all providers.
const envProviderTimeout = "LIVE_PROVIDER_TIMEOUT"

// SettingError is a provider setting at fault, named by its environment variable, so
// that the configuration can report it the way it reports its own settings.
type SettingError struct {
	Env    string
	Reason string
}

func (e *SettingError) Error() string { return e.Env + ": " + e.Reason }

func badSetting(env, format string, args ...any) error {
	return &SettingError{Env: env, Reason: fmt.Sprintf(format, args...)}
}
