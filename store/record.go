package store

import (
	"encoding/json"
	"fmt"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

// Row is a token as stored: what is not secret in Meta (JSON), each secret
// sealed on its own with the profile and field as associated data.
type Row struct {
	Meta        []byte
	Access      []byte
	Refresh     []byte
	PrevRefresh []byte
	Secrets     []byte
}

// Seal turns a token into a row.
func Seal(s *seal.Sealer, profile string, t *token.Token) (Row, error) {
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
		if *f.out, err = s.Seal(profile, f.name, f.in); err != nil {
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
		pt, err := s.Open(profile, f.name, f.in)
		if err != nil {
			return nil, unreadable(profile, err)
		}
		f.out(pt)
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
