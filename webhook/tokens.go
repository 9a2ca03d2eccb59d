package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
)

// DefaultGrace is how long the token a rotation replaced still verifies.
const DefaultGrace = 10 * time.Minute

// tokenCacheFor bounds how long a replica trusts its copy of a webhook's
// tokens before reading the store again.
const tokenCacheFor = 5 * time.Second

// Tokens keeps each webhook's signing tokens: a configured one, or one
// fetched through the vendor API, stored sealed, and rotated on request.
type Tokens struct {
	Broker func() *tokenbroker.Broker
	Store  store.Webhooks
	Grace  time.Duration
	Now    func() time.Time

	cache sync.Map // profile\x00wid -> cachedTokens
}

type cachedTokens struct {
	t  *store.WebhookToken
	at time.Time
}

func (t *Tokens) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

func (t *Tokens) grace() time.Duration {
	if t.Grace == 0 {
		return DefaultGrace
	}
	return t.Grace
}

// Verifying returns the tokens a delivery may be signed with: the current
// one and, within the grace period after a rotation, the previous one.
// fresh skips the in-memory copy.
func (t *Tokens) Verifying(ctx context.Context, profile string, wh config.Webhook, fresh bool) ([]string, error) {
	if wh.Token.IsSet() {
		v, err := wh.Token.Resolve()
		if err != nil {
			return nil, &failure.Error{Kind: failure.Config, Profile: profile, Msg: "webhook " + wh.ID + " token", Err: err}
		}
		return []string{v}, nil
	}
	key := profile + "\x00" + wh.ID
	var wt *store.WebhookToken
	if c, ok := t.cache.Load(key); ok && !fresh && t.now().Sub(c.(cachedTokens).at) < tokenCacheFor {
		wt = c.(cachedTokens).t
	} else {
		var err error
		if wt, err = t.Store.WebhookToken(ctx, profile, wh.ID); err != nil {
			return nil, err
		}
		if wt == nil {
			cur, err := t.Fetch(ctx, profile, wh.ID, http.MethodGet)
			if err != nil {
				return nil, err
			}
			wt = &store.WebhookToken{Current: cur}
			if err := t.Store.PutWebhookToken(ctx, profile, wh.ID, wt); err != nil {
				return nil, err
			}
		}
		t.cache.Store(key, cachedTokens{t: wt, at: t.now()})
	}
	out := []string{wt.Current}
	if wt.Previous != "" && t.now().Sub(wt.RotatedAt) < t.grace() {
		out = append(out, wt.Previous)
	}
	return out, nil
}

// Rotate asks the vendor for a new token and stores it, keeping the old
// one verifying for the grace period.
func (t *Tokens) Rotate(ctx context.Context, profile, wid string) (string, error) {
	old, err := t.Store.WebhookToken(ctx, profile, wid)
	if err != nil {
		return "", err
	}
	cur, err := t.Fetch(ctx, profile, wid, http.MethodPut)
	if err != nil {
		return "", err
	}
	wt := &store.WebhookToken{Current: cur, RotatedAt: t.now()}
	if old != nil {
		wt.Previous = old.Current
	}
	if err := t.Store.PutWebhookToken(ctx, profile, wid, wt); err != nil {
		return "", err
	}
	t.cache.Delete(profile + "\x00" + wid)
	return cur, nil
}

// Fetch reads (GET) or renews (PUT) a webhook's token at the vendor:
// /central/v1/webhooks/{wid}/token.
func (t *Tokens) Fetch(ctx context.Context, profile, wid, method string) (string, error) {
	var tok string
	err := t.call(ctx, profile, method, "/central/v1/webhooks/"+url.PathEscape(wid)+"/token", func(b []byte) error {
		var r struct {
			Token json.RawMessage `json:"token"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		// Either {"token": "..."} or {"token": {"token": "...", "ts": ...}}.
		if json.Unmarshal(r.Token, &tok) != nil {
			var inner struct {
				Token string `json:"token"`
			}
			json.Unmarshal(r.Token, &inner)
			tok = inner.Token
		}
		if tok == "" {
			return fmt.Errorf("no token in the answer")
		}
		return nil
	})
	return tok, err
}

// Call makes one authenticated call to the vendor's webhook API and hands
// the body to parse.
func (t *Tokens) call(ctx context.Context, profile, method, path string, parse func([]byte) error) error {
	b := t.Broker()
	hc, err := b.HTTPClient(profile)
	if err != nil {
		return err
	}
	p, _ := b.Provider(profile)
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(p.Describe().APIBase, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return failure.WithProfile(err, profile)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		kind := failure.Other
		if resp.StatusCode == http.StatusNotFound {
			kind = failure.Config
		}
		return &failure.Error{Kind: kind, Profile: profile, Endpoint: method + " " + path, Msg: "the webhook API answered " + resp.Status,
			Hint: "check the webhook id with `tokenbroker webhook list " + profile + "`"}
	}
	if err := parse(body); err != nil {
		return &failure.Error{Kind: failure.Protocol, Profile: profile, Endpoint: method + " " + path, Msg: "unexpected answer", Err: err}
	}
	return nil
}

// Raw makes a webhook API call and returns the body as it came (for
// `tokenbroker webhook list` and `ping`).
func (t *Tokens) Raw(ctx context.Context, profile, method, path string) ([]byte, error) {
	var out []byte
	err := t.call(ctx, profile, method, path, func(b []byte) error { out = b; return nil })
	return out, err
}
