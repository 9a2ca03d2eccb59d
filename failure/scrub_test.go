package failure

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestScrubRemovesSecretsAndKeepsTheClass(t *testing.T) {
	secret := "s3cr3t-client-secret"
	err := fmt.Errorf("wrapped: %w", &Error{Kind: RateLimited, Profile: "p", RetryAfter: time.Minute,
		Msg: "vendor said: bad client_secret=" + secret, Hint: "not " + secret, Err: errors.New("body " + secret)})
	got := Scrub(err, []string{secret, "id"})
	if strings.Contains(got.Error(), secret) || !strings.Contains(got.Error(), Redacted) {
		t.Errorf("scrubbed: %v", got)
	}
	var fe *Error
	if !errors.As(got, &fe) || fe.Kind != RateLimited || fe.RetryAfter != time.Minute || fe.Profile != "p" {
		t.Errorf("the class was lost: %#v", got)
	}
	if !strings.Contains(got.Error(), "id") {
		t.Errorf("a short value was scrubbed: %v", got)
	}
	plain := Scrub(errors.New("x "+secret), []string{secret})
	if strings.Contains(plain.Error(), secret) {
		t.Errorf("plain error: %v", plain)
	}
	clean := errors.New("nothing here")
	if Scrub(clean, []string{secret}) != clean {
		t.Error("an error without secrets was changed")
	}
}
