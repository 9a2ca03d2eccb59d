package provider

import (
	"context"
	"encoding/json"
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
	// The device authorization request carries the client's authentication
	// like every other call (x/oauth2's sends only client_id, which a
	// confidential client is refused for: RFC 8628 3.1).
	started := d.env.Now()
	form := url.Values{}
	d.requested(form)
	ds := d.site(d.endpoints.Device, "the device authorization request")
	resp, err := d.clientCall(ctx, d.endpoints.Device, form)
	if err != nil {
		return nil, classify(err, ds)
	}
	var da struct {
		DeviceCode              string      `json:"device_code"`
		UserCode                string      `json:"user_code"`
		VerificationURI         string      `json:"verification_uri"`
		VerificationURL         string      `json:"verification_url"` // Google's spelling
		VerificationURIComplete string      `json:"verification_uri_complete"`
		ExpiresIn               json.Number `json:"expires_in"`
		Interval                json.Number `json:"interval"`
	}
	if json.Unmarshal(resp.Body, &da) != nil {
		return nil, classify(errInvalidJSON, ds)
	}
	if da.DeviceCode == "" || da.UserCode == "" {
		return nil, classify(errors.New("the answer has no device_code or user_code"), ds)
	}
	if da.VerificationURI == "" {
		da.VerificationURI = da.VerificationURL
	}
	d.env.Warn("to log in profile " + d.p.Name + ", open " + da.VerificationURI + " and enter the code " + da.UserCode)
	if b, ok := in.(Browser); ok && da.VerificationURIComplete != "" {
		b.OpenURL(da.VerificationURIComplete)
	}
	interval := 5 * time.Second // RFC 8628 3.2's default
	if n, ok := seconds(da.Interval); ok && n > 0 {
		interval = n
	}
	var deadline time.Time
	if n, ok := seconds(da.ExpiresIn); ok && n > 0 {
		deadline = started.Add(n)
	}
	for {
		if !deadline.IsZero() && !d.env.Now().Before(deadline) {
			return nil, d.expired()
		}
		if err := d.env.Sleep(ctx, interval); err != nil {
			return nil, err
		}
		now := d.env.Now()
		resp, err = d.clientCall(ctx, d.tokenURL, url.Values{"grant_type": {deviceCodeGrant}, "device_code": {da.DeviceCode}})
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
