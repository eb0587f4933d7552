package publish

import "fmt"

// A provider refuses some messages before any request: a channel name it does not
// accept, data over its size or, for the providers that embed it as JSON, data that
// is not JSON. Such a refusal is an *Error marked Rejected: sending again cannot
// change the answer, so the relay dead-letters the message at once.

// refuse returns err as provider's refusal; nil stays nil.
func refuse(provider string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Provider: provider, Rejected: true, Err: err}
}

// refuseMessage is provider's refusal of message i of a call: its text is "message
// <i+1>" followed by format, as fmt.Errorf formats it with args.
func refuseMessage(provider string, i int, format string, args ...any) error {
	return refuse(provider, fmt.Errorf("message %d"+format, append([]any{i + 1}, args...)...))
}
