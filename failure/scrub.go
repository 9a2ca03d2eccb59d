package failure

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"sort"
	"strings"
)

// Redacted replaces a secret found in an error's text.
const Redacted = "[redacted]"

// Scrub returns err with every secret replaced by Redacted in its message,
// endpoint, hint and wrapped error: vendors echo requests in their error
// bodies, and an error is logged, stored in the audit and shown by
// `status` and the local API. Each secret is also looked for encoded as a
// vendor may echo it (see spellings). A classed error keeps its kind and
// Retry-After; a wrapped error that held a secret becomes plain text.
// Secrets shorter than 6 bytes are not looked for (they would blank out
// ordinary words).
func Scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	long := spellings(secrets)
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

// spellings are the forms a secret takes in what a vendor echoes: as it
// is, form- and path-encoded, JSON-escaped, and base64-encoded (a Basic
// credential is one secret of its own, see Broker.scrub), longest first so
// that a secret that holds another is replaced whole.
func spellings(secrets []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range secrets {
		if len(s) < 6 {
			continue
		}
		j, _ := json.Marshal(s)
		escaped := string(j[1 : len(j)-1])
		for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s), escaped, strings.ReplaceAll(escaped, "/", `\/`),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
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
