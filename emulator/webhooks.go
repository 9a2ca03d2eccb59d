package emulator

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// webhookTokenLen is the length of the webhook tokens the emulator issues (alphanumeric, like
// the 42 characters of the token in the signature vectors).
const webhookTokenLen = 42

// arubaWebhooks is the webhook part of the Aruba emulator, embedded in Aruba. Its state is
// guarded by Aruba's mutex.
//
// The API (all under /central/v1/webhooks, all needing a valid bearer access token):
//
//	GET  /central/v1/webhooks              list: {"count","settings":[{wid,name,urls,secure_token{token,ts},retry_policy{policy}}]}
//	POST /central/v1/webhooks              create from JSON {"name","urls"}: the new setting
//	GET  /central/v1/webhooks/{wid}/token  {"wid","token":{"token","ts"}}
//	PUT  /central/v1/webhooks/{wid}/token  rotate, same shape with the new token
//	GET  /central/v1/webhooks/{wid}/ping   deliver a signed test alert to every URL:
//	                                       {"status":"Success"|"Failure","delivered":[{"url","status"[,"error"]}]}
//
// These calls are API calls like GET /monitoring/v1/aps: the same token check (401
// invalid_token), TenantID check, per-second and daily limits with their headers, and they
// are counted in APIStats. Their Counts keys are "webhook_list", "webhook_create",
// "webhook_token_get", "webhook_token_rotate" and "webhook_ping" (not "api"); like every
// counter they count each request, accepted or not. Webhooks belong to the emulator as a
// whole, not to a customer: any valid token sees them all.
//
// Shapes are those the project's protocol notes give. Central's own guide shows other shapes in
// places (the token as a JSON-encoded string inside "secure_token", a ping answer in plain
// text); the emulator follows the notes.
type arubaWebhooks struct {
	// WebhookClient sends the deliveries of a ping; nil means a plain client. Each delivery is
	// bounded to 5 s either way. Set it before serving.
	WebhookClient *http.Client

	webhooks     map[string]*arubaWebhook
	webhookOrder []string // wids in creation order
}

// arubaWebhook is one webhook setting with its current and previous token.
type arubaWebhook struct {
	wid, name string
	urls      []string
	token     string
	tokenTS   time.Time // when token was issued
	prevToken string    // the token before the last rotation, "" before any
}

// webhookRoutes registers the webhook API on mux.
func (a *Aruba) webhookRoutes(mux *http.ServeMux) {
	route(mux, "/central/v1/webhooks", methods{
		http.MethodGet:  a.listWebhooks,
		http.MethodPost: a.createWebhook,
	})
	route(mux, "/central/v1/webhooks/{wid}/token", methods{
		http.MethodGet: a.getWebhookToken,
		http.MethodPut: a.rotateWebhookToken,
	})
	route(mux, "/central/v1/webhooks/{wid}/ping", methods{http.MethodGet: a.pingWebhook})
}

// CreateWebhook adds a webhook named name that delivers to urls, as POST /central/v1/webhooks
// does but without a token or any check of the URLs, and returns its wid.
func (a *Aruba) CreateWebhook(name string, urls ...string) (wid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addWebhook(name, urls, a.Now()).wid
}

// WebhookToken returns the current token of webhook wid, or "" when there is no such webhook.
func (a *Aruba) WebhookToken(wid string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if wh := a.webhooks[wid]; wh != nil {
		return wh.token
	}
	return ""
}

// PreviousWebhookToken returns the token webhook wid had before its last rotation, or "" when
// it was never rotated or there is no such webhook. Central does not say how long a replaced
// token keeps signing; the emulator signs only with the current one and keeps this one so that
// tests can show a receiver refuses it (or accepts it during a grace period of its own).
func (a *Aruba) PreviousWebhookToken(wid string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if wh := a.webhooks[wid]; wh != nil {
		return wh.prevToken
	}
	return ""
}

// addWebhook creates a webhook with a fresh token. The caller holds a.mu.
func (a *Aruba) addWebhook(name string, urls []string, now time.Time) *arubaWebhook {
	if a.webhooks == nil {
		a.webhooks = make(map[string]*arubaWebhook)
	}
	wh := &arubaWebhook{
		wid:     randomUUID(),
		name:    name,
		urls:    append([]string(nil), urls...),
		token:   randomAlnum(webhookTokenLen),
		tokenTS: now,
	}
	a.webhooks[wh.wid] = wh
	a.webhookOrder = append(a.webhookOrder, wh.wid)
	return wh
}

// setting renders wh as an element of the list's "settings".
func (wh *arubaWebhook) setting() map[string]any {
	return map[string]any{
		"wid":          wh.wid,
		"name":         wh.name,
		"urls":         append([]string{}, wh.urls...),
		"secure_token": map[string]any{"token": wh.token, "ts": wh.tokenTS.Unix()},
		"retry_policy": map[string]any{"policy": 1},
	}
}

// tokenBody renders the answer of GET and PUT /central/v1/webhooks/{wid}/token.
func (wh *arubaWebhook) tokenBody() map[string]any {
	return map[string]any{
		"wid":   wh.wid,
		"token": map[string]any{"token": wh.token, "ts": wh.tokenTS.Unix()},
	}
}

// acceptAPI is what every Aruba API call goes through (the monitoring and webhook APIs): the bearer
// token, the TenantID header, the daily quota and the per-second limit, with the rate-limit
// headers. It writes the refusal and returns false, or counts the call and returns true.
// The caller holds a.mu.
func (a *Aruba) acceptAPI(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	acc, st := a.lookupAccess(bearer(r), now)
	if st != tokenValid {
		a.rateHeaders(w, "", now)
		desc := "Invalid access token"
		if st == tokenExpired {
			desc = "Access token expired"
		}
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": desc})
		return false
	}
	customer := acc.grant.customer
	if tenant := r.Header.Get("TenantID"); tenant != "" && !a.knownCustomer(tenant) {
		a.rateHeaders(w, customer, now)
		writeJSON(w, http.StatusForbidden, map[string]any{"message": "Forbidden: unknown TenantID " + strconv.Quote(tenant)})
		return false
	}
	d := a.today(customer, now)
	if d.used >= a.DailyQuota {
		a.limited++
		a.rateHeaders(w, customer, now)
		arubaTooMany(w)
		return false
	}
	if ok, _ := a.perSecond.allow(customer, a.PerSecondLimit, now); !ok {
		a.limited++
		a.rateHeaders(w, customer, now)
		arubaTooMany(w)
		return false
	}
	d.used++
	a.accepted++
	if g := acc.grant; bearer(r) == g.newest && g.prev != "" {
		// First successful use of the newest access token proves the pair: the fallback dies.
		delete(a.refresh, g.prev)
		g.prev = ""
	}
	a.rateHeaders(w, customer, now)
	return true
}

// webhookNotFound answers a request for an unknown wid.
func webhookNotFound(w http.ResponseWriter, wid string) {
	writeJSON(w, http.StatusNotFound, map[string]any{"message": "Webhook " + strconv.Quote(wid) + " not found"})
}

func (a *Aruba) listWebhooks(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("webhook_list")
	if !a.acceptAPI(w, r, a.Now()) {
		return
	}
	settings := make([]any, 0, len(a.webhookOrder))
	for _, wid := range a.webhookOrder {
		settings = append(settings, a.webhooks[wid].setting())
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(settings), "settings": settings})
}

func (a *Aruba) createWebhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string   `json:"name"`
		URLs []string `json:"urls"`
	}
	err := readJSON(r, &body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("webhook_create")
	now := a.Now()
	if !a.acceptAPI(w, r, now) {
		return
	}
	if msg := jsonProblem(err); msg != "" {
		arubaError(w, http.StatusBadRequest, msg)
		return
	}
	body.Name = strings.TrimSpace(body.Name)
	switch {
	case body.Name == "":
		arubaError(w, http.StatusBadRequest, "name is required")
		return
	case len(body.URLs) == 0:
		arubaError(w, http.StatusBadRequest, "urls must list at least one URL")
		return
	}
	for _, s := range body.URLs {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			arubaError(w, http.StatusBadRequest, "invalid URL "+strconv.Quote(s)+": want an absolute http or https URL")
			return
		}
	}
	writeJSON(w, http.StatusOK, a.addWebhook(body.Name, body.URLs, now).setting())
}

func (a *Aruba) getWebhookToken(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("webhook_token_get")
	if !a.acceptAPI(w, r, a.Now()) {
		return
	}
	wid := r.PathValue("wid")
	wh := a.webhooks[wid]
	if wh == nil {
		webhookNotFound(w, wid)
		return
	}
	writeJSON(w, http.StatusOK, wh.tokenBody())
}

func (a *Aruba) rotateWebhookToken(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("webhook_token_rotate")
	now := a.Now()
	if !a.acceptAPI(w, r, now) {
		return
	}
	wid := r.PathValue("wid")
	wh := a.webhooks[wid]
	if wh == nil {
		webhookNotFound(w, wid)
		return
	}
	wh.prevToken = wh.token
	wh.token, wh.tokenTS = randomAlnum(webhookTokenLen), now
	writeJSON(w, http.StatusOK, wh.tokenBody())
}

// pingWebhook delivers one signed test alert to each of the webhook's URLs, one after the
// other, and reports each receiver's status. The lock is released while delivering, so a
// receiver may call this emulator (for example to fetch the webhook token) before answering.
// The answer is 200 whenever the webhook exists; "status" is "Success" when every receiver
// answered 2xx and "Failure" otherwise, and a delivery that got no answer has status 0 and an
// "error".
func (a *Aruba) pingWebhook(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.count("webhook_ping")
	now := a.Now()
	if !a.acceptAPI(w, r, now) {
		a.mu.Unlock()
		return
	}
	wid := r.PathValue("wid")
	wh := a.webhooks[wid]
	if wh == nil {
		a.mu.Unlock()
		webhookNotFound(w, wid)
		return
	}
	urls := append([]string(nil), wh.urls...)
	d := NewDelivery(wh.token, pingAlert(wh.wid, wh.name, now), now)
	hc := a.WebhookClient
	a.mu.Unlock()

	if hc == nil {
		hc = &http.Client{}
	}
	status := "Success"
	delivered := make([]any, 0, len(urls))
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(r.Context(), sendTimeout)
		code, err := Send(ctx, hc, u, d)
		cancel()
		entry := map[string]any{"url": u, "status": code}
		if err != nil {
			entry["error"] = err.Error()
		}
		if code < 200 || code > 299 {
			status = "Failure"
		}
		delivered = append(delivered, entry)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "delivered": delivered})
}
