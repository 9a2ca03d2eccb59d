package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Aruba Central webhook delivery headers (VENDORS.md, Aruba Central, "Webhooks").
const (
	HeaderSignature = "X-Central-Signature"
	HeaderService   = "X-Central-Service"
	HeaderDelivery  = "X-Central-Delivery-Id"
	HeaderTimestamp = "X-Central-Delivery-Timestamp"
)

// alertsService is the X-Central-Service of alert deliveries.
const alertsService = "Alerts"

// faultSkew is how far StaleTimestamp and FutureTimestamp move a delivery's timestamp: beyond
// any sensible freshness window (receivers typically allow about 5 minutes).
const faultSkew = 10 * time.Minute

// sendTimeout bounds one delivery when the caller gives Send no client, and every delivery of a
// webhook ping.
const sendTimeout = 5 * time.Second

// Delivery is one webhook POST as Aruba Central sends it: the raw JSON body and the four
// X-Central-* headers. Deliveries made by NewDelivery remember the token they were signed with
// (unexported), so that With can re-sign them.
type Delivery struct {
	Service    string // X-Central-Service, "Alerts" for alerts
	DeliveryID string // X-Central-Delivery-Id
	Timestamp  string // X-Central-Delivery-Timestamp, decimal unix seconds
	Body       []byte // the raw body, exactly the bytes signed
	Signature  string // X-Central-Signature

	token string
}

// Sign returns Central's webhook signature: base64 (standard, padded) of
// HMAC-SHA256(key = token as UTF-8, message = body + service + deliveryID + timestamp), the
// parts concatenated without separators.
func Sign(token string, body []byte, service, deliveryID, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(body)
	mac.Write([]byte(service))
	mac.Write([]byte(deliveryID))
	mac.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// NewDelivery returns body as a signed alert delivery: service "Alerts", a random UUID-shaped
// delivery id and the timestamp now in unix seconds. body is used as is (not copied).
func NewDelivery(token string, body []byte, now time.Time) Delivery {
	d := Delivery{
		Service:    alertsService,
		DeliveryID: randomUUID(),
		Timestamp:  strconv.FormatInt(now.Unix(), 10),
		Body:       body,
		token:      token,
	}
	d.Signature = Sign(token, d.Body, d.Service, d.DeliveryID, d.Timestamp)
	return d
}

// Fault is a way a delivery can be wrong, for testing receivers. Every fault but None and
// MillisecondTimestamp must be refused by a receiver that verifies signatures and freshness.
type Fault int

const (
	// None leaves the delivery as it is.
	None Fault = iota
	// BadSignature replaces the signature with another well-formed one (same length, valid
	// base64) that does not match.
	BadSignature
	// TamperedBody changes the body after signing (it stays valid JSON when it was a JSON object).
	TamperedBody
	// TamperedHeader changes X-Central-Service after signing.
	TamperedHeader
	// WrongToken re-signs the delivery with a random token instead of the webhook's.
	WrongToken
	// StaleTimestamp re-signs the delivery, correctly, with a timestamp 10 minutes before now.
	StaleTimestamp
	// FutureTimestamp re-signs the delivery, correctly, with a timestamp 10 minutes after now.
	FutureTimestamp
	// MillisecondTimestamp re-signs the delivery, correctly, with the timestamp now in unix
	// milliseconds, as Central sometimes sends it. The delivery is valid and fresh.
	MillisecondTimestamp
	// MissingHeaders drops the four X-Central-* headers (the body is kept).
	MissingHeaders
)

var faultNames = [...]string{
	None:                 "none",
	BadSignature:         "bad-signature",
	TamperedBody:         "tampered-body",
	TamperedHeader:       "tampered-header",
	WrongToken:           "wrong-token",
	StaleTimestamp:       "stale-timestamp",
	FutureTimestamp:      "future-timestamp",
	MillisecondTimestamp: "ms-timestamp",
	MissingHeaders:       "missing-headers",
}

// Faults returns every Fault, None first.
func Faults() []Fault {
	out := make([]Fault, len(faultNames))
	for i := range out {
		out[i] = Fault(i)
	}
	return out
}

// String returns the fault's name as ParseFault accepts it, for example "stale-timestamp".
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// ParseFault returns the fault named s (see Fault.String).
func ParseFault(s string) (Fault, error) {
	for i, n := range faultNames {
		if n == s {
			return Fault(i), nil
		}
	}
	return None, fmt.Errorf("emulator: unknown webhook fault %q", s)
}

// Acceptable reports whether a correct receiver accepts a delivery with this fault: true for
// None and MillisecondTimestamp only.
func (f Fault) Acceptable() bool { return f == None || f == MillisecondTimestamp }

// With returns a copy of d spoiled by f, with timestamps taken relative to now. The body is
// copied when it changes, never modified in place. The faults that re-sign (WrongToken and the
// three timestamp faults) need the token NewDelivery recorded: on a Delivery built otherwise
// they panic.
func (d Delivery) With(f Fault, now time.Time) Delivery {
	switch f {
	case None:
	case BadSignature:
		d.Signature = spoil(d.Signature)
	case TamperedBody:
		d.Body = tamper(d.Body)
	case TamperedHeader:
		if d.Service == alertsService {
			d.Service = "Alert"
		} else {
			d.Service = alertsService
		}
	case WrongToken:
		d.needToken(f)
		d.Signature = Sign(randomAlnum(42), d.Body, d.Service, d.DeliveryID, d.Timestamp)
	case StaleTimestamp:
		d.resign(f, strconv.FormatInt(now.Add(-faultSkew).Unix(), 10))
	case FutureTimestamp:
		d.resign(f, strconv.FormatInt(now.Add(faultSkew).Unix(), 10))
	case MillisecondTimestamp:
		d.resign(f, strconv.FormatInt(now.UnixMilli(), 10))
	case MissingHeaders:
		d.Service, d.DeliveryID, d.Timestamp, d.Signature = "", "", "", ""
	default:
		panic("emulator: unknown webhook fault " + f.String())
	}
	return d
}

func (d *Delivery) needToken(f Fault) {
	if d.token == "" {
		panic("emulator: Delivery.With(" + f.String() + ") needs a Delivery made by NewDelivery")
	}
}

func (d *Delivery) resign(f Fault, timestamp string) {
	d.needToken(f)
	d.Timestamp = timestamp
	d.Signature = Sign(d.token, d.Body, d.Service, d.DeliveryID, d.Timestamp)
}

// spoil returns a different signature of the same form: the first byte of the MAC flipped.
func spoil(sig string) string {
	mac, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(mac) == 0 {
		mac = make([]byte, sha256.Size)
	}
	mac[0] ^= 0xff
	return base64.StdEncoding.EncodeToString(mac)
}

// tamper returns a changed copy of body: a JSON object gains a field (and stays valid JSON),
// anything else gets a byte appended.
func tamper(body []byte) []byte {
	trimmed := bytes.TrimRight(body, " \t\r\n")
	if json.Valid(trimmed) && len(trimmed) >= 2 && trimmed[0] == '{' && trimmed[len(trimmed)-1] == '}' {
		inner := bytes.TrimSpace(trimmed[1 : len(trimmed)-1])
		out := make([]byte, 0, len(trimmed)+20)
		out = append(out, trimmed[:len(trimmed)-1]...)
		if len(inner) > 0 {
			out = append(out, ',')
		}
		return append(out, `"tampered":true}`...)
	}
	return append(bytes.Clone(body), 'x')
}

// Request returns the delivery as Central sends it: POST url with the body, Content-Type
// application/json and the X-Central-* headers (those that are empty are left out).
func (d Delivery) Request(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range [...]struct{ name, value string }{
		{HeaderSignature, d.Signature},
		{HeaderService, d.Service},
		{HeaderDelivery, d.DeliveryID},
		{HeaderTimestamp, d.Timestamp},
	} {
		if h.value != "" {
			req.Header.Set(h.name, h.value)
		}
	}
	return req, nil
}

// Send posts d to url with hc and returns the receiver's HTTP status. The response body is
// read (up to 1 MiB) and discarded. A nil hc means a client with a 5 s timeout.
func Send(ctx context.Context, hc *http.Client, url string, d Delivery) (status int, err error) {
	if hc == nil {
		hc = &http.Client{Timeout: sendTimeout}
	}
	req, err := d.Request(ctx, url)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, nil
}

// SampleAlerts returns Central-style alert bodies (compact JSON, snake_case fields as in the
// samples of Central's webhook guide): an access point, an AOS-Switch, an AOS-CX switch, a
// gateway and a miscellaneous alert, in that order. The first is byte for byte the body of the
// signature test vectors. Each call returns fresh slices.
func SampleAlerts() [][]byte {
	out := make([][]byte, len(sampleAlerts))
	for i, s := range sampleAlerts {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(s)); err != nil {
			panic("emulator: bad sample alert: " + err.Error())
		}
		out[i] = buf.Bytes()
	}
	return out
}

var sampleAlerts = [...]string{
	// Access point: the body of testdata/aruba-webhook-signatures.json.
	`{"alert_type":"AP disconnected","id":"AWmE4r6OEK0Y6m8dEU3Q","nid":1100,
	  "setting_id":"1234-1-1100","severity":"Major","timestamp":1573115183,
	  "details":{"serial":"AX0140586","group":"00TestVRK","_rule_number":"0"},
	  "description":"AP with Name 6c:f3:7f:c3:5d:92 and MAC address 6c:f3:7f:c3:5d:92 disconnected",
	  "state":"Open","operation":"create"}`,
	// AOS-Switch.
	`{"alert_type":"Switch port flapping","id":"AWmF1c0sEK0Y6m8dEU7a","nid":1207,
	  "setting_id":"1234-1-1207","severity":"Minor","timestamp":1573116042,
	  "details":{"serial":"SG79JKT0Y3","group":"Branch-Switches","hostname":"sw-2930f-01",
	    "port":"1/12","_rule_number":"0"},
	  "description":"Port 1/12 on switch sw-2930f-01 (SG79JKT0Y3) went up and down 6 times in 5 minutes",
	  "state":"Open","operation":"create"}`,
	// AOS-CX switch.
	`{"alert_type":"CX switch high CPU utilization","id":"AWmG7q2PEK0Y6m8dEU9k","nid":1321,
	  "setting_id":"1234-1-1321","severity":"Major","timestamp":1573116555,
	  "details":{"serial":"TW0ALM3021","group":"Core-CX","hostname":"cx-6300-core",
	    "cpu_utilization":"93","threshold":"90","duration":"10","_rule_number":"0"},
	  "description":"CPU utilization of switch cx-6300-core (TW0ALM3021) is 93%, above 90% for 10 minutes",
	  "state":"Open","operation":"create"}`,
	// Gateway.
	`{"alert_type":"Gateway uplink down","id":"AWmH2x8LEK0Y6m8dEVb2","nid":1424,
	  "setting_id":"1234-1-1424","severity":"Critical","timestamp":1573117010,
	  "details":{"serial":"CNKJKLB0Z1","group":"Branch-GW","hostname":"gw-9004-branch12",
	    "uplink":"INTERNET-1","interface":"GE0/0/1","_rule_number":"0"},
	  "description":"Uplink INTERNET-1 (GE0/0/1) of gateway gw-9004-branch12 (CNKJKLB0Z1) is down",
	  "state":"Open","operation":"create"}`,
	// Miscellaneous.
	`{"alert_type":"New AP detected","id":"AWmI9d4TEK0Y6m8dEVe7","nid":1006,
	  "setting_id":"1234-1-1006","severity":"Minor","timestamp":1573117502,
	  "details":{"serial":"CNF7JSS2FQ","macaddr":"20:4c:03:2a:3b:4c","model":"AP-515",
	    "group":"default","_rule_number":"0"},
	  "description":"New AP with serial CNF7JSS2FQ and MAC address 20:4c:03:2a:3b:4c detected",
	  "state":"Open","operation":"create"}`,
}

// testAlert is the body of the delivery a webhook ping sends.
type testAlert struct {
	AlertType   string            `json:"alert_type"`
	ID          string            `json:"id"`
	NID         int               `json:"nid"`
	SettingID   string            `json:"setting_id"`
	Severity    string            `json:"severity"`
	Timestamp   int64             `json:"timestamp"`
	Details     map[string]string `json:"details"`
	Description string            `json:"description"`
	State       string            `json:"state"`
	Operation   string            `json:"operation"`
	Webhook     string            `json:"webhook"`
}

// pingAlert returns the test alert that a ping of webhook wid (named name) delivers.
func pingAlert(wid, name string, now time.Time) []byte {
	body, err := json.Marshal(testAlert{
		AlertType:   "Webhook test",
		ID:          randomAlnum(20),
		NID:         0,
		SettingID:   wid,
		Severity:    "Info",
		Timestamp:   now.Unix(),
		Details:     map[string]string{"_rule_number": "0", "wid": wid, "name": name},
		Description: "Test notification for webhook " + name,
		State:       "Open",
		Operation:   "create",
		Webhook:     wid,
	})
	if err != nil {
		panic("emulator: cannot encode test alert: " + err.Error())
	}
	return body
}

// randomUUID returns a random version 4 UUID in its canonical text form.
func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomAlnum returns n random characters of [A-Za-z0-9], the alphabet of Central's webhook
// tokens and alert ids.
func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, c := range buf {
			if c < 248 && len(out) < n { // 248 = 4*62: no modulo bias
				out = append(out, alphabet[c%62])
			}
		}
	}
	return string(out)
}
