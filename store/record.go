package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

// Row is a token as stored: what is not secret in Meta (JSON), each secret
// sealed on its own. The associated data of each sealed value is the
// profile, the field, the generation and a hash of Meta, so a value moved to
// another row or column, an older row replayed, an edited expiry or a
// removed value is refused rather than read.
type Row struct {
	Meta        []byte
	Access      []byte
	Refresh     []byte
	PrevRefresh []byte
	Secrets     []byte
}

// binding is the part of the associated data that ties a sealed value to
// its row as a whole.
func binding(field string, generation int64, meta []byte) string {
	h := sha256.Sum256(meta)
	return field + "\x00" + strconv.FormatInt(generation, 10) + "\x00" + hex.EncodeToString(h[:])
}

// present prefixes every sealed plaintext, so that even an absent value is
// sealed and a removed column is noticed.
const present = "v"

// Seal turns a token into the row for the given generation.
func Seal(s *seal.Sealer, profile string, generation int64, t *token.Token) (Row, error) {
	meta := t.Clone()
	meta.AccessToken, meta.RefreshToken, meta.PrevRefreshToken, meta.Secrets = "", "", "", nil
	var r Row
	var err error
	if r.Meta, err = json.Marshal(meta); err != nil {
		return r, err
	}
	var secrets []byte
	if len(t.Secrets) > 0 {
		if secrets, err = json.Marshal(t.Secrets); err != nil {
			return r, err
		}
	}
	for _, f := range []struct {
		name string
		in   []byte
		out  *[]byte
	}{
		{"access_token", []byte(t.AccessToken), &r.Access},
		{"refresh_token", []byte(t.RefreshToken), &r.Refresh},
		{"prev_refresh_token", []byte(t.PrevRefreshToken), &r.PrevRefresh},
		{"secrets", secrets, &r.Secrets},
	} {
		if *f.out, err = s.Seal(profile, binding(f.name, generation, r.Meta), append([]byte(present), f.in...)); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Unseal turns a row back into a token. A row that does not open (wrong
// key, tampering) is an error that names the profile; nothing is changed.
func Unseal(s *seal.Sealer, profile string, generation int64, r Row) (*token.Token, error) {
	t := &token.Token{}
	if err := json.Unmarshal(r.Meta, t); err != nil {
		return nil, unreadable(profile, fmt.Errorf("metadata: %w", err))
	}
	// Every sealed value's associated data covers the metadata: if any of
	// them does not open, nothing of the row is returned.
	var secrets []byte
	for _, f := range []struct {
		name string
		in   []byte
		out  func([]byte)
	}{
		{"access_token", r.Access, func(b []byte) { t.AccessToken = string(b) }},
		{"refresh_token", r.Refresh, func(b []byte) { t.RefreshToken = string(b) }},
		{"prev_refresh_token", r.PrevRefresh, func(b []byte) { t.PrevRefreshToken = string(b) }},
		{"secrets", r.Secrets, func(b []byte) { secrets = b }},
	} {
		pt, err := s.Open(profile, binding(f.name, generation, r.Meta), f.in)
		if err != nil || len(pt) < len(present) {
			if err == nil {
				err = seal.ErrOpen
			}
			return nil, unreadable(profile, err)
		}
		f.out(pt[len(present):])
	}
	if len(secrets) > 0 {
		if err := json.Unmarshal(secrets, &t.Secrets); err != nil {
			return nil, unreadable(profile, err)
		}
	}
	t.Generation = generation
	return t, nil
}

func unreadable(profile string, err error) error {
	return &failure.Error{Kind: failure.Other, Profile: profile, Msg: "the stored token cannot be read", Err: err,
		Hint: "check the master key (`key:` in the config, $TOKENBROKER_KEY, or the key file beside the state); nothing was overwritten"}
}

// rowFields are a token row's sealed columns, by field name.
func rowFields(r *Row) []struct {
	name string
	v    *[]byte
} {
	return []struct {
		name string
		v    *[]byte
	}{{"access_token", &r.Access}, {"refresh_token", &r.Refresh}, {"prev_refresh_token", &r.PrevRefresh}, {"secrets", &r.Secrets}}
}

// ResealRow seals a row's values again under s's primary key, keeping its
// metadata byte for byte (so fields a newer release added survive); changed
// says whether any value was under another key.
func ResealRow(s *seal.Sealer, profile string, generation int64, r Row) (Row, bool, error) {
	out := r
	changed := false
	for _, f := range rowFields(&out) {
		v, c, err := s.Reseal(profile, binding(f.name, generation, r.Meta), *f.v)
		if err != nil {
			return r, false, err
		}
		*f.v, changed = v, changed || c
	}
	return out, changed, nil
}

// RowKey says which key seals a row (the one sealing its access token: a
// row is always sealed whole).
func RowKey(s *seal.Sealer, profile string, generation int64, r Row) (string, error) {
	_, id, err := s.OpenID(profile, binding("access_token", generation, r.Meta), r.Access)
	return id, err
}

func webhookField(webhook string) string { return "webhook_token\x00" + webhook }

// SealWebhookToken seals a webhook's tokens as one value bound to the
// profile and the webhook.
func SealWebhookToken(s *seal.Sealer, profile, webhook string, t *WebhookToken) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return s.Seal(profile, webhookField(webhook), b)
}

// UnsealWebhookToken opens what SealWebhookToken sealed.
func UnsealWebhookToken(s *seal.Sealer, profile, webhook string, sealed []byte) (*WebhookToken, error) {
	b, err := s.Open(profile, webhookField(webhook), sealed)
	if err != nil {
		return nil, unreadable(profile, err)
	}
	t := &WebhookToken{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, unreadable(profile, err)
	}
	return t, nil
}
