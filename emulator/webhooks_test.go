package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifySig checks a signature the way a receiver would, independently of Sign.
func verifySig(token string, body []byte, service, id, ts, sig string) bool {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(append(append(append(append([]byte{}, body...), service...), id...), ts...))
	got, err := base64.StdEncoding.DecodeString(sig)
	return err == nil && hmac.Equal(got, mac.Sum(nil))
}

func verifyDelivery(token string, d Delivery) bool {
	return verifySig(token, d.Body, d.Service, d.DeliveryID, d.Timestamp, d.Signature)
}

type sigVector struct {
	Name       string `json:"name"`
	Token      string `json:"token"`
	BodyBase64 string `json:"body_base64"`
	Service    string `json:"service"`
	DeliveryID string `json:"delivery_id"`
	Timestamp  string `json:"timestamp"`
	Signature  string `json:"signature"`
	Valid      bool   `json:"valid"`
}

func sigVectors(t *testing.T) []sigVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/aruba-webhook-signatures.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []sigVector `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no signature vectors")
	}
	return file.Cases
}

func TestSignVectors(t *testing.T) {
	valid, invalid := 0, 0
	for _, v := range sigVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			body, err := base64.StdEncoding.DecodeString(v.BodyBase64)
			if err != nil {
				t.Fatal(err)
			}
			got := Sign(v.Token, body, v.Service, v.DeliveryID, v.Timestamp)
			if v.Valid && got != v.Signature {
				t.Errorf("Sign = %q, want %q", got, v.Signature)
			}
			if !v.Valid && got == v.Signature {
				t.Errorf("Sign reproduced the signature of a tampered delivery: %q", got)
			}
		})
		if v.Valid {
			valid++
		} else {
			invalid++
		}
	}
	if valid == 0 || invalid == 0 {
		t.Fatalf("vectors: %d valid, %d invalid; want some of each", valid, invalid)
	}
}

func TestSampleAlerts(t *testing.T) {
	alerts := SampleAlerts()
	if len(alerts) != 5 {
		t.Fatalf("%d sample alerts, want 5", len(alerts))
	}
	// The AP alert is the vectors' body, so a receiver test can use both.
	want, _ := base64.StdEncoding.DecodeString(sigVectors(t)[0].BodyBase64)
	if !bytes.Equal(alerts[0], want) {
		t.Errorf("AP alert = %s, want the vector body %s", alerts[0], want)
	}
	snake := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				if !snake.MatchString(k) {
					t.Errorf("%s: field %q is not snake_case", path, k)
				}
				walk(path+"."+k, x)
			}
		}
	}
	types := map[string]bool{}
	for i, body := range alerts {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
		for _, k := range []string{"alert_type", "id", "nid", "setting_id", "severity", "timestamp", "details", "description", "state", "operation"} {
			if _, ok := m[k]; !ok {
				t.Errorf("alert %d lacks %q: %s", i, k, body)
			}
		}
		if d, _ := m["details"].(map[string]any); d["serial"] == nil {
			t.Errorf("alert %d: details lack serial", i)
		}
		walk("alert "+strconv.Itoa(i), m)
		types[m["alert_type"].(string)] = true
	}
	if len(types) != 5 || !types["AP disconnected"] || !types["New AP detected"] {
		t.Errorf("alert types %v", types)
	}
	// Fresh slices every call.
	alerts[0][0] = 'X'
	if SampleAlerts()[0][0] != '{' {
		t.Error("SampleAlerts returned shared memory")
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewDelivery(t *testing.T) {
	now := time.Unix(1741608000, 0)
	body := SampleAlerts()[1]
	d := NewDelivery("tok", body, now)
	if d.Service != "Alerts" || d.Timestamp != "1741608000" || !uuidRE.MatchString(d.DeliveryID) {
		t.Fatalf("delivery %+v", d)
	}
	if !bytes.Equal(d.Body, body) || !verifyDelivery("tok", d) {
		t.Fatal("delivery is not signed with its token")
	}
	if d2 := NewDelivery("tok", body, now); d2.DeliveryID == d.DeliveryID {
		t.Fatal("delivery ids repeat")
	}
}

func TestDeliveryRequestAndSend(t *testing.T) {
	now := time.Unix(1741608000, 0)
	d := NewDelivery("tok", SampleAlerts()[2], now)
	var got *http.Request
	var gotBody []byte
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	status, err := Send(context.Background(), nil, srv.URL+"/hook", d)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("Send = %d, %v", status, err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/hook" {
		t.Fatalf("request %s %s", got.Method, got.URL.Path)
	}
	for h, want := range map[string]string{
		"Content-Type":                 "application/json",
		"X-Central-Signature":          d.Signature,
		"X-Central-Service":            "Alerts",
		"X-Central-Delivery-Id":        d.DeliveryID,
		"X-Central-Delivery-Timestamp": "1741608000",
	} {
		if g := got.Header.Get(h); g != want {
			t.Errorf("%s = %q, want %q", h, g, want)
		}
	}
	if !bytes.Equal(gotBody, d.Body) {
		t.Errorf("body = %s, want %s", gotBody, d.Body)
	}
	if _, err := Send(context.Background(), srv.Client(), "http://127.0.0.1:0/", d); err == nil {
		t.Error("Send to a closed port: no error")
	}
}

func TestFaults(t *testing.T) {
	const token = "Ptqbgpyo1sXXg3OcjJ2PYV6qsVY5YmTwHgxUbpeLp4"
	created := time.Unix(1741608000, 0)
	now := created.Add(30 * time.Second)
	orig := NewDelivery(token, SampleAlerts()[0], created)
	origBody := bytes.Clone(orig.Body)
	sec := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }

	for _, f := range Faults() {
		t.Run(f.String(), func(t *testing.T) {
			d := orig.With(f, now)
			if !bytes.Equal(orig.Body, origBody) {
				t.Fatal("With modified the original body")
			}
			if p, err := ParseFault(f.String()); err != nil || p != f {
				t.Fatalf("ParseFault(%q) = %v, %v", f.String(), p, err)
			}
			sigOK := verifyDelivery(token, d)
			same := func(fields ...string) {
				t.Helper()
				for _, k := range fields {
					var g, w string
					switch k {
					case "service":
						g, w = d.Service, orig.Service
					case "id":
						g, w = d.DeliveryID, orig.DeliveryID
					case "ts":
						g, w = d.Timestamp, orig.Timestamp
					case "body":
						g, w = string(d.Body), string(orig.Body)
					case "sig":
						g, w = d.Signature, orig.Signature
					}
					if g != w {
						t.Errorf("%s changed: %q, was %q", k, g, w)
					}
				}
			}
			switch f {
			case None:
				same("service", "id", "ts", "body", "sig")
				if !sigOK {
					t.Error("signature invalid")
				}
			case BadSignature:
				same("service", "id", "ts", "body")
				raw, err := base64.StdEncoding.DecodeString(d.Signature)
				if sigOK || err != nil || len(raw) != sha256.Size {
					t.Errorf("signature %q: want a well-formed wrong one", d.Signature)
				}
			case TamperedBody:
				same("service", "id", "ts", "sig")
				if sigOK || bytes.Equal(d.Body, orig.Body) || !json.Valid(d.Body) {
					t.Errorf("body %s: want changed, valid JSON, not matching the signature", d.Body)
				}
			case TamperedHeader:
				same("id", "ts", "body", "sig")
				if sigOK || d.Service == orig.Service || d.Service == "" {
					t.Errorf("service %q: want another, not matching the signature", d.Service)
				}
			case WrongToken:
				same("service", "id", "ts", "body")
				if sigOK || d.Signature == orig.Signature {
					t.Error("signature verifies with the webhook token")
				}
			case StaleTimestamp, FutureTimestamp, MillisecondTimestamp:
				same("service", "id", "body")
				want := map[Fault]string{
					StaleTimestamp:       sec(-10 * time.Minute),
					FutureTimestamp:      sec(10 * time.Minute),
					MillisecondTimestamp: strconv.FormatInt(now.UnixMilli(), 10),
				}[f]
				if d.Timestamp != want || !sigOK {
					t.Errorf("timestamp %q (signature valid %v), want %q correctly signed", d.Timestamp, sigOK, want)
				}
			case MissingHeaders:
				same("body")
				req, err := d.Request(context.Background(), "http://127.0.0.1/hook")
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range []string{HeaderSignature, HeaderService, HeaderDelivery, HeaderTimestamp} {
					if _, ok := req.Header[h]; ok {
						t.Errorf("header %s present", h)
					}
				}
				if req.Header.Get("Content-Type") != "application/json" {
					t.Error("Content-Type missing")
				}
			default:
				t.Fatalf("fault %v not covered by this test", f)
			}
			if f.Acceptable() != (f == None || f == MillisecondTimestamp) {
				t.Errorf("Acceptable() = %v", f.Acceptable())
			}
		})
	}
	if _, err := ParseFault("nope"); err == nil {
		t.Error("ParseFault accepted an unknown name")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("re-signing a hand-built Delivery did not panic")
			}
		}()
		Delivery{Body: []byte("{}")}.With(StaleTimestamp, now)
	}()
}

// webhookAPI calls the webhook API with bearer token at.
func webhookAPI(t *testing.T, srv *httptest.Server, method, path, at, body string) result {
	t.Helper()
	h := []string{"Authorization", "Bearer " + at}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return send(t, srv, method, path, body, h...)
}

func TestWebhookAPIAuth(t *testing.T) {
	a, srv, _ := newArubaTest(t)
	wid := a.CreateWebhook("hook", "http://127.0.0.1:1/")
	calls := []struct{ method, path, body, key string }{
		{http.MethodGet, "/central/v1/webhooks", "", "webhook_list"},
		{http.MethodPost, "/central/v1/webhooks", `{"name":"x","urls":["http://127.0.0.1/"]}`, "webhook_create"},
		{http.MethodGet, "/central/v1/webhooks/" + wid + "/token", "", "webhook_token_get"},
		{http.MethodPut, "/central/v1/webhooks/" + wid + "/token", "", "webhook_token_rotate"},
		{http.MethodGet, "/central/v1/webhooks/" + wid + "/ping", "", "webhook_ping"},
	}
	for _, c := range calls {
		for _, auth := range []string{"", "Bearer not-a-token"} {
			h := []string{"Content-Type", "application/json"}
			if auth != "" {
				h = append(h, "Authorization", auth)
			}
			r := send(t, srv, c.method, c.path, c.body, h...)
			wantStatus(t, r, http.StatusUnauthorized)
			if r.str("error") != "invalid_token" || r.header.Get("X-RateLimit-Limit-second") == "" {
				t.Errorf("%s %s: body %s, headers %v", c.method, c.path, r.body, r.header)
			}
		}
	}
	counts := a.Counts()
	for _, c := range calls {
		if counts[c.key] != 2 {
			t.Errorf("Counts()[%q] = %d, want 2", c.key, counts[c.key])
		}
	}
	if tok := a.WebhookToken(wid); len(tok) < 40 {
		t.Errorf("token %q survived or changed", tok)
	}
	if a.PreviousWebhookToken(wid) != "" {
		t.Error("a refused rotate rotated")
	}
}

func TestWebhookAPI(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	a.mu.Lock()
	a.PerSecondLimit = 1000 // this test is about shapes; TestWebhookAPIRateLimit does limits
	a.mu.Unlock()
	at, _ := offline(t, a)

	r := webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks", at, "")
	wantStatus(t, r, http.StatusOK)
	if string(r.body) != `{"count":0,"settings":[]}` {
		t.Fatalf("empty list = %s", r.body)
	}

	r = webhookAPI(t, srv, http.MethodPost, "/central/v1/webhooks", at, `{"name":"noc","urls":["https://example.org/a","http://127.0.0.1:9/b"]}`)
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, map[string]any{"wid": 0, "name": 0, "urls": 0, "secure_token": 0, "retry_policy": 0})
	wid := r.str("wid")
	if !uuidRE.MatchString(wid) || r.str("name") != "noc" {
		t.Fatalf("created %s", r.body)
	}
	st := r.obj["secure_token"].(map[string]any)
	tok0 := st["token"].(string)
	if len(tok0) < 40 || tok0 != a.WebhookToken(wid) || st["ts"] != float64(clk.Now().Unix()) {
		t.Fatalf("secure_token %v, WebhookToken %q", st, a.WebhookToken(wid))
	}
	if rp := r.obj["retry_policy"].(map[string]any); rp["policy"] != float64(1) {
		t.Fatalf("retry_policy %v", rp)
	}

	wid2 := a.CreateWebhook("second", "http://127.0.0.1:9/c")
	r = webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks", at, "")
	wantStatus(t, r, http.StatusOK)
	var list struct {
		Count    int `json:"count"`
		Settings []struct {
			WID         string   `json:"wid"`
			Name        string   `json:"name"`
			URLs        []string `json:"urls"`
			SecureToken struct {
				Token string `json:"token"`
				TS    int64  `json:"ts"`
			} `json:"secure_token"`
			RetryPolicy struct {
				Policy int `json:"policy"`
			} `json:"retry_policy"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if list.Count != 2 || len(list.Settings) != 2 || list.Settings[0].WID != wid || list.Settings[1].WID != wid2 ||
		strings.Join(list.Settings[0].URLs, " ") != "https://example.org/a http://127.0.0.1:9/b" ||
		list.Settings[1].SecureToken.Token != a.WebhookToken(wid2) || list.Settings[1].RetryPolicy.Policy != 1 {
		t.Fatalf("list %s", r.body)
	}

	r = webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+wid+"/token", at, "")
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, map[string]any{"wid": 0, "token": 0})
	if tk := r.obj["token"].(map[string]any); r.str("wid") != wid || tk["token"] != tok0 || tk["ts"] != float64(clk.Now().Unix()) {
		t.Fatalf("token %s", r.body)
	}

	clk.Advance(time.Hour)
	r = webhookAPI(t, srv, http.MethodPut, "/central/v1/webhooks/"+wid+"/token", at, "")
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, map[string]any{"wid": 0, "token": 0})
	tk := r.obj["token"].(map[string]any)
	tok1, _ := tk["token"].(string)
	if tok1 == tok0 || len(tok1) < 40 || tk["ts"] != float64(clk.Now().Unix()) {
		t.Fatalf("rotated %s (old token %q)", r.body, tok0)
	}
	if a.WebhookToken(wid) != tok1 || a.PreviousWebhookToken(wid) != tok0 {
		t.Fatalf("after rotate: current %q previous %q", a.WebhookToken(wid), a.PreviousWebhookToken(wid))
	}
	r = webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+wid+"/token", at, "")
	if r.obj["token"].(map[string]any)["token"] != tok1 {
		t.Fatalf("GET after rotate %s", r.body)
	}
	if a.WebhookToken(wid2) == tok1 || a.WebhookToken("nope") != "" {
		t.Fatal("tokens leak between webhooks")
	}

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/central/v1/webhooks/nope/token"},
		{http.MethodPut, "/central/v1/webhooks/nope/token"},
		{http.MethodGet, "/central/v1/webhooks/nope/ping"},
	} {
		r = webhookAPI(t, srv, c.method, c.path, at, "")
		wantStatus(t, r, http.StatusNotFound)
		if r.str("message") == "" {
			t.Errorf("%s %s: body %s", c.method, c.path, r.body)
		}
	}

	for _, body := range []string{`{"urls":["http://x/"]}`, `{"name":"n"}`, `{"name":"n","urls":["ftp://x/"]}`, `{"name":"n","urls":["/relative"]}`, `[`} {
		r = webhookAPI(t, srv, http.MethodPost, "/central/v1/webhooks", at, body)
		wantStatus(t, r, http.StatusBadRequest)
		if r.str("message") == "" {
			t.Errorf("create %s: body %s", body, r.body)
		}
	}
	r = send(t, srv, http.MethodPost, "/central/v1/webhooks", `{"name":"n","urls":["http://x/"]}`, "Authorization", "Bearer "+at, "Content-Type", "text/plain")
	wantStatus(t, r, http.StatusBadRequest)
	r = webhookAPI(t, srv, http.MethodDelete, "/central/v1/webhooks/"+wid+"/token", at, "")
	wantStatus(t, r, http.StatusMethodNotAllowed)

	c := a.Counts()
	// Every request counts, refused ones too (the 404s and 400s); a 405 never reaches a handler.
	if c["webhook_list"] != 2 || c["webhook_create"] != 7 || c["webhook_token_get"] != 3 ||
		c["webhook_token_rotate"] != 2 || c["webhook_ping"] != 1 || c["api"] != 0 {
		t.Errorf("counts %v", c)
	}
}

func TestWebhookAPIRateLimit(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	at, _ := offline(t, a)
	wid := a.CreateWebhook("hook", "http://127.0.0.1:1/")
	for i := range arubaPerSecond {
		r := webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+wid+"/token", at, "")
		wantStatus(t, r, http.StatusOK)
		if got := r.header.Get("X-RateLimit-Remaining-second"); got != strconv.Itoa(arubaPerSecond-1-i) {
			t.Fatalf("call %d: Remaining-second %q", i+1, got)
		}
	}
	wantStatus(t, arubaAPI(t, srv, at), http.StatusTooManyRequests)
	wantStatus(t, webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks", at, ""), http.StatusTooManyRequests)
	clk.Advance(time.Second)
	wantStatus(t, webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks", at, ""), http.StatusOK)
	if acc, lim := a.APIStats(); acc != arubaPerSecond+1 || lim != 2 {
		t.Fatalf("APIStats = %d, %d", acc, lim)
	}
}

// receiver records the deliveries it gets and answers status.
type receiver struct {
	mu     sync.Mutex
	got    []Delivery
	hdr    []http.Header
	status int
	before func() // runs before answering, without mu
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	before := rc.before
	rc.mu.Unlock()
	if before != nil {
		before()
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, Delivery{
		Service:    r.Header.Get(HeaderService),
		DeliveryID: r.Header.Get(HeaderDelivery),
		Timestamp:  r.Header.Get(HeaderTimestamp),
		Signature:  r.Header.Get(HeaderSignature),
		Body:       body,
	})
	rc.hdr = append(rc.hdr, r.Header.Clone())
	w.WriteHeader(rc.status)
}

func (rc *receiver) setBefore(f func()) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.before = f
}

// deliveries returns what the receiver got so far.
func (rc *receiver) deliveries() ([]Delivery, []http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Delivery(nil), rc.got...), append([]http.Header(nil), rc.hdr...)
}

func TestWebhookPing(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	at, _ := offline(t, a)

	ok := &receiver{status: http.StatusOK}
	okSrv := serve(t, ok)
	missing := &receiver{status: http.StatusNotFound}
	missingSrv := serve(t, missing)
	wid := a.CreateWebhook("noc", okSrv.URL+"/hook", missingSrv.URL+"/gone")
	token := a.WebhookToken(wid)

	// The receiver fetches the token through the emulator's API while the ping waits for its
	// answer, as a broker without a configured token does: the emulator must not hold its lock.
	fetched := make(chan string, 1)
	ok.setBefore(func() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/central/v1/webhooks/"+wid+"/token", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		var body struct {
			Token struct {
				Token string `json:"token"`
			} `json:"token"`
		}
		if resp, err := srv.Client().Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		fetched <- body.Token.Token
	})

	r := webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+wid+"/ping", at, "")
	wantStatus(t, r, http.StatusOK)
	var resp struct {
		Status    string `json:"status"`
		Delivered []struct {
			URL    string `json:"url"`
			Status int    `json:"status"`
		} `json:"delivered"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != "Failure" || len(resp.Delivered) != 2 ||
		resp.Delivered[0].URL != okSrv.URL+"/hook" || resp.Delivered[0].Status != http.StatusOK ||
		resp.Delivered[1].URL != missingSrv.URL+"/gone" || resp.Delivered[1].Status != http.StatusNotFound {
		t.Fatalf("ping answer %s", r.body)
	}
	if got := <-fetched; got != token {
		t.Fatalf("receiver fetched token %q, want %q", got, token)
	}
	okGot, okHdr := ok.deliveries()
	missingGot, _ := missing.deliveries()
	if len(okGot) != 1 || len(missingGot) != 1 {
		t.Fatalf("deliveries: %d and %d, want one each", len(okGot), len(missingGot))
	}
	d := okGot[0]
	if !verifySig(token, d.Body, d.Service, d.DeliveryID, d.Timestamp, d.Signature) {
		t.Fatalf("ping delivery does not verify with the webhook token: %+v", d)
	}
	if d.Service != "Alerts" || d.Timestamp != strconv.FormatInt(clk.Now().Unix(), 10) || !uuidRE.MatchString(d.DeliveryID) {
		t.Fatalf("ping headers %+v", d)
	}
	if ct := okHdr[0].Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var alert map[string]any
	if err := json.Unmarshal(d.Body, &alert); err != nil || alert["alert_type"] == nil || alert["setting_id"] != wid {
		t.Fatalf("ping body %s (%v)", d.Body, err)
	}

	// After a rotation the ping signs with the new token only.
	ok.setBefore(nil)
	wantStatus(t, webhookAPI(t, srv, http.MethodPut, "/central/v1/webhooks/"+wid+"/token", at, ""), http.StatusOK)
	okOnly := a.CreateWebhook("ok-only", okSrv.URL+"/hook")
	r = webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+okOnly+"/ping", at, "")
	if r.str("status") != "Success" {
		t.Fatalf("ping to a 200 receiver: %s", r.body)
	}
	wantStatus(t, webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+wid+"/ping", at, ""), http.StatusOK)
	okGot, _ = ok.deliveries()
	last := okGot[len(okGot)-1]
	if !verifyDelivery(a.WebhookToken(wid), last) || verifyDelivery(a.PreviousWebhookToken(wid), last) {
		t.Fatal("after rotation the ping is not signed with the new token alone")
	}

	// A receiver that is not there: status 0 and an error, still 200.
	clk.Advance(time.Second) // a fresh per-second window
	dead := a.CreateWebhook("dead", "http://127.0.0.1:0/hook")
	r = webhookAPI(t, srv, http.MethodGet, "/central/v1/webhooks/"+dead+"/ping", at, "")
	wantStatus(t, r, http.StatusOK)
	del := r.obj["delivered"].([]any)[0].(map[string]any)
	if r.str("status") != "Failure" || del["status"] != float64(0) || del["error"] == nil {
		t.Fatalf("ping to nowhere: %s", r.body)
	}
	if c := a.Counts()["webhook_ping"]; c != 4 {
		t.Fatalf("webhook_ping = %d, want 4", c)
	}
}
