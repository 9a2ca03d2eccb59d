package provider

import (
	"context"
	"errors"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// deviceCode is a generic oauth2 profile with RFC 8628's device grant:
// `login` shows a code and a URL, the person approves on any device, and
// tokenbroker polls within the server's interval, slowing down when told.
type deviceCode struct{ *generic }

// Login implements Loginer.
func (d *deviceCode) Login(ctx context.Context, in Prompter) (*token.Token, error) {
	if err := d.discover(ctx); err != nil {
		return nil, err
	}
	if d.endpoints.Device == "" {
		return nil, configErr(d.p, "the device_code grant needs `device_url` or an `issuer` that announces one")
	}
	id, err := d.secret(d.p.ClientID, "client_id")
	if err != nil {
		return nil, err
	}
	cfg := oauth2.Config{ClientID: id, Scopes: d.p.Scopes, Endpoint: oauth2.Endpoint{DeviceAuthURL: d.endpoints.Device, TokenURL: d.tokenURL, AuthStyle: d.v.ClientAuth}}
	if !d.public {
		c, err := d.client(nil)
		if err != nil {
			return nil, err
		}
		cfg.ClientSecret = c.Secret
	}
	started, wall := d.env.Now(), time.Now()
	da, err := viaOAuth2(ctx, d.env.HTTP, false, func(ctx context.Context) (*oauth2.DeviceAuthResponse, error) {
		return cfg.DeviceAuth(ctx)
	})
	if err != nil {
		return nil, classify(err, d.site(d.endpoints.Device, "the device authorization request"))
	}
	d.env.Warn("to log in profile " + d.p.Name + ", open " + da.VerificationURI + " and enter the code " + da.UserCode)
	if b, ok := in.(Browser); ok && da.VerificationURIComplete != "" {
		b.OpenURL(da.VerificationURIComplete)
	}
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second // RFC 8628 3.2's default
	}
	// x/oauth2 reads expires_in on the wall clock; carry it to ours.
	var deadline time.Time
	if !da.Expiry.IsZero() {
		deadline = started.Add(da.Expiry.Sub(wall))
	}
	for {
		if !deadline.IsZero() && !d.env.Now().Before(deadline) {
			return nil, d.expired()
		}
		if err := d.env.Sleep(ctx, interval); err != nil {
			return nil, err
		}
		now := d.env.Now()
		resp, err := d.clientCall(ctx, d.tokenURL, url.Values{"grant_type": {deviceCodeGrant}, "device_code": {da.DeviceCode}})
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch re.ErrorCode {
			case "authorization_pending":
				continue
			case "slow_down":
				interval += 5 * time.Second // RFC 8628 3.5
				continue
			case "expired_token":
				return nil, d.expired()
			}
		}
		s := d.site(d.tokenURL, "the device code")
		if err != nil {
			return nil, classify(err, s)
		}
		t, err := d.parse(resp, "device_code", now)
		if err != nil {
			return nil, classify(err, s)
		}
		d.carryOver(t, nil, "")
		return t, nil
	}
}

func (d *deviceCode) expired() error {
	return &failure.Error{Kind: failure.Rejected, Profile: d.p.Name, Msg: "the device code expired before the login was approved",
		Hint: "run `tokenbroker login " + d.p.Name + "` again and approve within the time shown"}
}
