package provider

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

// Import reads a token JSON downloaded from a vendor's UI, such as Aruba
// Central's "offline token" (seed 001): created_at, in epoch milliseconds
// (or seconds), is when the token's lifetime began, so a token downloaded an
// hour ago has an hour left.
func (o *oauthProvider) Import(data []byte) (*token.Token, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, &failure.Error{Kind: failure.Config, Profile: o.p.Name,
			Msg: "the file to import is not a token JSON object", Hint: "pass the file downloaded from " + o.v.Display}
	}
	created := o.env.Now()
	if v, ok := m["created_at"]; ok {
		at, ok := epoch(v)
		if !ok {
			return nil, &failure.Error{Kind: failure.Config, Profile: o.p.Name, Msg: "created_at in the token file is not a time"}
		}
		created = at
	}
	t, err := build(func(k string) any { return m[k] }, o.tokenField, "import", created)
	if err != nil {
		return nil, &failure.Error{Kind: failure.Config, Profile: o.p.Name,
			Msg: "the file to import has no " + o.tokenField, Hint: "pass the file downloaded from " + o.v.Display}
	}
	if t.RefreshToken != "" && t.RefreshExpiry.IsZero() && o.v.RefreshIdle > 0 {
		t.RefreshExpiry = created.Add(o.v.RefreshIdle)
	}
	return t, nil
}

// epoch reads a Unix time in seconds or milliseconds: values past the year
// 33658 in seconds are taken as milliseconds.
func epoch(v any) (time.Time, bool) {
	f, ok := number(v)
	if !ok || f <= 0 {
		return time.Time{}, false
	}
	n := int64(f)
	if n > 1e12 {
		return time.UnixMilli(n), true
	}
	return time.Unix(n, 0), true
}
