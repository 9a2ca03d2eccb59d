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

// A secret echoed form-encoded, JSON-escaped or in base64 (as in a Basic
// credential) is found too, and one secret that holds another is
// replaced whole.
func TestScrubFindsEncodedSecrets(t *testing.T) {
	secret := "s3cr+t/Val=ue"
	for _, echoed := range []string{"s3cr%2Bt%2FVal%3Due", `s3cr+t\/Val=ue`, "czNjcit0L1ZhbD11ZQ==", "s3cr+t%2FVal=ue"} {
		got := Scrub(errors.New("vendor said: "+echoed), []string{secret}).Error()
		if strings.Contains(got, echoed) {
			t.Errorf("%q survived: %s", echoed, got)
		}
	}
	got := Scrub(errors.New("token abcdef-tail-secret"), []string{"abcdef", "abcdef-tail-secret"}).Error()
	if strings.Contains(got, "tail") {
		t.Errorf("the longer secret was cut: %s", got)
	}
}
