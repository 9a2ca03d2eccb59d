package main

import (
	"fmt"
	"time"

	"github.com/tokenbroker/tokenbroker"
)

// expiresIn says in words how long a token is good for.
func expiresIn(t *tokenbroker.Token) string {
	if t.Expiry.IsZero() {
		return "no expiry given (used until rejected)"
	}
	d := time.Until(t.Expiry)
	if d <= 0 {
		return "expired " + round(-d) + " ago"
	}
	return "expires in " + round(d) + fmt.Sprintf(" (%s)", t.Expiry.UTC().Format(time.RFC3339))
}

func round(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
