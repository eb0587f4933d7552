package providertest

import "fmt"

// HTTPError is a fake's answer other than 200: the status, and the message the fake
// writes in its provider's form (plain text, a JSON object, …).
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

// Failf is an HTTPError of status with a message formatted as fmt.Sprintf does.
func Failf(status int, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Message: fmt.Sprintf(format, args...)}
}
