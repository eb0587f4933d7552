package publish

import (
	"errors"
	"reflect"
	"testing"
)

// TestSettingsCoverTheConfigurations checks each provider's settings table against
// its configuration: every field but Timeout (LIVE_PROVIDER_TIMEOUT, the worker's)
// is set by exactly one setting, and every setting Validate names is declared.
func TestSettingsCoverTheConfigurations(t *testing.T) {
	t.Run("pusher", func(t *testing.T) {
		checkSettings(t, PusherSettings(), func(c PusherConfig) error { return c.Validate() })
	})
	t.Run("ably", func(t *testing.T) {
		checkSettings(t, AblySettings(), func(c AblyConfig) error { return c.Validate() })
	})
	t.Run("piesocket", func(t *testing.T) {
		checkSettings(t, PieSocketSettings(), func(c PieSocketConfig) error { return c.Validate() })
	})
}

func checkSettings[C any](t *testing.T, settings []Setting[C], validate func(C) error) {
	t.Helper()
	var c C
	v := reflect.ValueOf(&c).Elem()
	fieldOf := map[uintptr]string{}
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "Timeout" {
			fieldOf[v.Field(i).Addr().Pointer()] = name
		}
	}
	declared := map[string]bool{envProviderTimeout: true}
	set := map[string]string{}
	for _, s := range settings {
		if s.Help == "" {
			t.Errorf("%s has no help", s.Env)
		}
		if declared[s.Env] {
			t.Errorf("%s is declared twice", s.Env)
		}
		declared[s.Env] = true
		p := reflect.ValueOf(s.Field(&c))
		switch p.Interface().(type) {
		case *string, *int, *bool:
		default:
			t.Errorf("%s points at a %s", s.Env, p.Type())
			continue
		}
		name, ok := fieldOf[p.Pointer()]
		switch {
		case !ok:
			t.Errorf("%s points at no field of %T but Timeout", s.Env, c)
		case set[name] != "":
			t.Errorf("%s and %s both set %s", set[name], s.Env, name)
		default:
			set[name] = s.Env
		}
	}
	for _, name := range fieldOf {
		if set[name] == "" {
			t.Errorf("no setting sets %T.%s", c, name)
		}
	}

	// The zero configuration with a negative timeout is at fault in as many ways as
	// it can be; every setting its errors name must be one the table declares.
	reflect.ValueOf(&c).Elem().FieldByName("Timeout").SetInt(-1)
	var errs interface{ Unwrap() []error }
	if !errors.As(validate(c), &errs) {
		t.Fatal("Validate accepted the zero configuration")
	}
	for _, err := range errs.Unwrap() {
		var se *SettingError
		if !errors.As(err, &se) {
			t.Errorf("Validate: %v is no *SettingError", err)
		} else if !declared[se.Env] {
			t.Errorf("Validate names %s, which is no setting", se.Env)
		}
	}
}
