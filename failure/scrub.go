package failure

import (
	"errors"
	"strings"
)

// Redacted replaces a secret found in an error's text.
const Redacted = "[redacted]"

// Scrub returns err with every secret replaced by Redacted in its message,
// endpoint, hint and wrapped error: vendors echo requests in their error
// bodies, and an error is logged, stored in the audit and shown by
// `status` and the local API. A classed error keeps its kind and
// Retry-After; a wrapped error that held a secret becomes plain text.
// Secrets shorter than 6 bytes are not looked for (they would blank out
// ordinary words).
func Scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var long []string
	for _, s := range secrets {
		if len(s) >= 6 {
			long = append(long, s)
		}
	}
	if len(long) == 0 || !holds(err.Error(), long) {
		return err
	}
	var fe *Error
	if !errors.As(err, &fe) {
		return errors.New(replace(err.Error(), long))
	}
	out := *fe
	out.Msg, out.Endpoint, out.Hint = replace(fe.Msg, long), replace(fe.Endpoint, long), replace(fe.Hint, long)
	if fe.Err != nil && holds(fe.Err.Error(), long) {
		out.Err = errors.New(replace(fe.Err.Error(), long))
	}
	return &out
}

func holds(text string, secrets []string) bool {
	for _, s := range secrets {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

func replace(text string, secrets []string) string {
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, Redacted)
	}
	return text
}
