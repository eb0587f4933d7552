package publish

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// providerError returns err as an *Error of provider, or fails t. The error must not
// show the secret nor a request signature.
func providerError(t *testing.T, err error, provider string) *Error {
	t.Helper()
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v (%T) is not a *publish.Error", err, err)
	}
	t.Logf("error: %v", err)
	if perr.Provider != provider {
		t.Errorf("Provider = %q, want %s", perr.Provider, provider)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error shows the secret: %v", err)
	}
	if strings.Contains(err.Error(), "auth_signature") {
		t.Errorf("error shows the request signature: %v", err)
	}
	return perr
}

// channelCase is a channel name and what a provider says of it.
type channelCase struct {
	channel string
	want    string // in the error; empty means valid
}

// checkChannels runs check, a provider's CheckChannel, on each case's channel and
// checks the verdict with checkRejected.
func checkChannels(t *testing.T, provider string, check func(string) error, tests []channelCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.channel, func(t *testing.T) {
			checkRejected(t, check(tc.channel), provider, tc.want)
		})
	}
}

// checkRejected checks err, a provider's verdict on a message: nil when want is
// empty, else a rejection of provider whose text holds want.
func checkRejected(t *testing.T, err error, provider, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	perr := providerError(t, err, provider)
	if !perr.Rejected || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v (rejected %v), want a rejection saying %q", err, perr.Rejected, want)
	}
}

// configCase is one configuration shown to a provider: a valid one after edit.
type configCase[C any] struct {
	name string
	edit func(*C)
	want []string // settings named in the error; none means valid
}

// checkConfigs runs checkValidate on each case, with valid edited by it, that
// configuration's Validate and newP as the constructor.
func checkConfigs[C interface{ Validate() error }, P any](t *testing.T, valid C, tests []configCase[C], newP func(C, *zap.Logger) (P, error)) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			checkValidate(t, cfg.Validate(), tc.want, func() error {
				_, err := newP(cfg, zaptest.NewLogger(t))
				return err
			})
		})
	}
}

// checkValidate checks what a provider says of one configuration: err from its
// Validate and build, which calls its constructor. When want is empty both accept
// it; otherwise both refuse it and the error names each setting of want but not the
// secret.
func checkValidate(t *testing.T, err error, want []string, build func() error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if err := build(); err != nil {
			t.Fatalf("constructor: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatal("Validate accepted an invalid configuration")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error shows the secret: %v", err)
	}
	if build() == nil {
		t.Error("the constructor accepted an invalid configuration")
	}
}
