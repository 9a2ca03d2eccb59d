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

// fileSignatures are fields that only one vendor's token files carry, all
// of them together: Aruba Central's offline token (seed 001) and
// RingCentral's token answer.
var fileSignatures = []struct {
	vendor string // the display name, as Description.Vendor says it
	fields []string
}{
	{"Aruba Central", []string{"appname", "authenticated_userid", "credential_id"}},
	{"RingCentral", []string{"owner_id", "endpoint_id"}},
}

// FileVendor names the vendor whose token file data plainly is, or "" when
// it does not say: `import` refuses another vendor's file.
func FileVendor(data []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
next:
	for _, sig := range fileSignatures {
		for _, f := range sig.fields {
			if _, ok := m[f]; !ok {
				continue next
			}
		}
		return sig.vendor
	}
	return ""
}
