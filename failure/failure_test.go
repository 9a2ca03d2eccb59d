package failure

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestExitCodes(t *testing.T) {
	for kind, code := range map[Kind]int{Other: 1, Config: 2, Rejected: 3, RateLimited: 4, Unreachable: 5, Protocol: 1} {
		if got := kind.ExitCode(); got != code {
			t.Errorf("%v: exit %d, want %d", kind, got, code)
		}
	}
}

func TestMessageNamesProfileEndpointAndHint(t *testing.T) {
	err := &Error{Kind: Rejected, Profile: "p", Endpoint: "https://idp/token", Msg: "rejected", Hint: "log in again", Err: errors.New("invalid_grant")}
	if got := err.Error(); got != `profile "p": rejected (https://idp/token): invalid_grant: log in again` {
		t.Errorf("message %q", got)
	}
	if KindOf(fmt.Errorf("wrapped: %w", err)) != Rejected || KindOf(errors.New("x")) != Other {
		t.Error("KindOf does not see through wrapping")
	}
}

// WithProfile never changes the error it is given: callers of one
// single-flight renewal share it.
func TestWithProfileCopies(t *testing.T) {
	shared := &Error{Kind: Unreachable, Msg: "down", RetryAfter: time.Second}
	named := WithProfile(shared, "a")
	if shared.Profile != "" {
		t.Errorf("the shared error was changed: %+v", shared)
	}
	var fe *Error
	if !errors.As(named, &fe) || fe.Profile != "a" || fe.Kind != Unreachable || fe.RetryAfter != time.Second {
		t.Errorf("named %#v", named)
	}
	if again := WithProfile(named, "b"); !strings.Contains(again.Error(), `"a"`) {
		t.Errorf("a named error was renamed: %v", again)
	}
	if plain := WithProfile(errors.New("boom"), "c"); KindOf(plain) != Other || !strings.Contains(plain.Error(), `profile "c"`) {
		t.Errorf("plain %v", plain)
	}
}
