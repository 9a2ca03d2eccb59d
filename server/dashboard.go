package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/status"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/webhook"
)

//go:embed ui
var uiFiles embed.FS

// Dashboard sessions: the broker key, typed once into the login form, is
// exchanged for a random session id in an HttpOnly, SameSite=Strict cookie;
// every action also needs the session's CSRF token in a header.
const (
	sessionCookie = "tb_session"
	sessionFor    = 12 * time.Hour
	csrfHeader    = "X-CSRF-Token"
)

type session struct {
	csrf    string
	expires time.Time
}

type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

func (s *sessions) create() (id string, sess session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, v := range s.m { // forget expired sessions as new ones come
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	id, sess = randomID(), session{csrf: randomID(), expires: now.Add(sessionFor)}
	s.m[id] = sess
	return id, sess
}

func (s *sessions) get(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[c.Value]
	if !ok || time.Now().After(v.expires) {
		return session{}, false
	}
	return v, true
}

func (s *sessions) drop(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.m, c.Value)
		s.mu.Unlock()
	}
}

func randomID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// deliveryLog keeps the latest webhook outcomes for the dashboard.
type deliveryLog struct {
	mu   sync.Mutex
	rows []deliveryRow
}

type deliveryRow struct {
	Time    time.Time `json:"time"`
	Profile string    `json:"profile"`
	Outcome string    `json:"outcome"` // accepted, refused, forwarded, failed
	Reason  string    `json:"reason,omitempty"`
	Count   int       `json:"count,omitempty"`
}

const deliveryLogSize = 200

func (l *deliveryLog) add(r deliveryRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Time = time.Now()
	l.rows = append(l.rows, r)
	if len(l.rows) > deliveryLogSize {
		l.rows = l.rows[len(l.rows)-deliveryLogSize:]
	}
}

func (l *deliveryLog) latest() []deliveryRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]deliveryRow, len(l.rows))
	for i, r := range l.rows {
		out[len(l.rows)-1-i] = r
	}
	return out
}

// dashboard mounts the UI routes.
func (s *Server) dashboard() {
	assets, _ := fs.Sub(uiFiles, "ui")
	s.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page := "login.html"
		if _, ok := s.sessions.get(r); ok {
			page = "index.html"
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		b, _ := uiFiles.ReadFile("ui/" + page)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
	s.mux.HandleFunc("POST /ui/login", func(w http.ResponseWriter, r *http.Request) {
		key := r.PostFormValue("key")
		h := sha256.Sum256([]byte(key))
		if subtle.ConstantTimeCompare(h[:], s.keyHash[:]) != 1 {
			http.Redirect(w, r, "/?error=key", http.StatusSeeOther)
			return
		}
		id, _ := s.sessions.create()
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionFor / time.Second)})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	s.mux.HandleFunc("POST /ui/logout", s.uiAction(func(w http.ResponseWriter, r *http.Request) error {
		s.sessions.drop(r)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return nil
	}))
	s.mux.HandleFunc("GET /ui/state", func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.sessions.get(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "message": "log in with the broker key"})
			return
		}
		st, err := s.uiState(r.Context(), sess)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	s.mux.HandleFunc("POST /ui/profiles/{name}/refresh", s.uiAction(func(w http.ResponseWriter, r *http.Request) error {
		_, err := s.Broker().Token(r.Context(), r.PathValue("name"), tokenbroker.TokenOptions{Force: true})
		if err == nil {
			s.sched.Now(r.PathValue("name"))
		}
		return err
	}))
	s.mux.HandleFunc("POST /ui/profiles/{name}/revoke", s.uiAction(func(w http.ResponseWriter, r *http.Request) error {
		_, err := s.Broker().Revoke(r.Context(), r.PathValue("name"), nil)
		return err
	}))
	s.mux.HandleFunc("POST /ui/profiles/{name}/webhooks/{wid}/rotate", s.uiAction(func(w http.ResponseWriter, r *http.Request) error {
		if s.receiver == nil {
			return failure.New(failure.Config, "this state keeps no webhooks")
		}
		_, err := s.receiver.Tokens.Rotate(r.Context(), r.PathValue("name"), r.PathValue("wid"))
		return err
	}))
}

// uiAction requires a session and its CSRF token, runs fn and answers JSON.
func (s *Server) uiAction(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.sessions.get(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "message": "log in with the broker key"})
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(sess.csrf)) != 1 {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "csrf", "message": "missing or wrong " + csrfHeader})
			return
		}
		if err := fn(w, r); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// uiProfile is a profiles-table row.
type uiProfile struct {
	status.Row
	Provider       string    `json:"provider"`
	Region         string    `json:"region,omitempty"`
	Tenant         string    `json:"tenant,omitempty"`
	LimitPerSecond float64   `json:"limit_per_second,omitempty"`
	Rate           []float64 `json:"rate"`  // requests/s per minute over the last hour
	Quota          []int     `json:"quota"` // daily quota left per minute (-1 unknown)
	Webhooks       []string  `json:"webhooks,omitempty"`
	// Tenants are an MSP profile's, who share its token and its budget.
	Tenants []uiTenant `json:"tenants,omitempty"`
}

// uiTenant is one tenant of an MSP profile, with its proxied calls.
type uiTenant struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Calls    int64  `json:"calls"`
	LastCall string `json:"last_call,omitempty"`
}

// uiTimeline is one profile's past and next 24 h.
type uiTimeline struct {
	Profile  string      `json:"profile"`
	Bars     [][2]string `json:"bars"`     // token lifetimes
	Ticks    []string    `json:"ticks"`    // renewals
	Failures []string    `json:"failures"` // failed renewals
	Planned  []string    `json:"planned"`  // renewals to come
}

type uiStateDoc struct {
	Now        string        `json:"now"`
	CSRF       string        `json:"csrf"`
	Profiles   []uiProfile   `json:"profiles"`
	Timeline   []uiTimeline  `json:"timeline"`
	Audit      []store.Event `json:"audit"`
	Deliveries []deliveryRow `json:"deliveries"`
}

func (s *Server) uiState(ctx context.Context, sess session) (*uiStateDoc, error) {
	b := s.Broker()
	rows, err := status.Of(ctx, b)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	doc := &uiStateDoc{Now: now.UTC().Format(time.RFC3339Nano), CSRF: sess.csrf, Deliveries: s.deliveries.latest()}
	// One read of the audit log serves the audit table and every timeline.
	events, err := b.Events(ctx, "", timelineEvents)
	if err != nil {
		return nil, err
	}
	doc.Audit = events[:min(len(events), auditRows)]
	byProfile := map[string][]store.Event{}
	for _, e := range events {
		byProfile[e.Profile] = append(byProfile[e.Profile], e)
	}
	for _, row := range rows {
		p := uiProfile{Row: row}
		if prof, err := b.Config().Profile(row.Profile); err == nil {
			p.Provider = prof.Provider
			p.Region = firstOf(prof.Region, prof.Environment)
			p.Tenant = firstOf(prof.DelegateTenant, prof.CustomerID, prof.TenantID)
			for _, wh := range prof.Webhooks {
				p.Webhooks = append(p.Webhooks, wh.ID)
			}
		}
		if pr, err := b.Provider(row.Profile); err == nil {
			p.LimitPerSecond = pr.Describe().Limits.PerSecond
		}
		p.Rate, p.Quota = s.traffic.snapshot(row.Profile, now)
		if list, _, err := b.Tenants(ctx, row.Profile); err == nil {
			for _, t := range list {
				ut := uiTenant{ID: t.ID, Name: t.Name}
				if n, last := s.tenantCalls.get(row.Profile, t.ID); n > 0 {
					ut.Calls, ut.LastCall = n, last.UTC().Format(time.RFC3339)
				}
				p.Tenants = append(p.Tenants, ut)
			}
		}
		doc.Profiles = append(doc.Profiles, p)
		doc.Timeline = append(doc.Timeline, timeline(row, byProfile[row.Profile], now))
	}
	return doc, nil
}

// Audit rows the dashboard reads: the latest auditRows for the table, and
// up to timelineEvents for the timelines.
const (
	auditRows      = 200
	timelineEvents = 5000
)

// timeline lays out a profile's renewals over the past 24 h and the
// expected ones over the next 24 h.
func timeline(row status.Row, events []store.Event, now time.Time) uiTimeline {
	tl := uiTimeline{Profile: row.Profile, Bars: [][2]string{}, Ticks: []string{}, Failures: []string{}, Planned: []string{}}
	from := now.Add(-24 * time.Hour)
	var life time.Duration
	if row.ObtainedAt != nil && row.ExpiresAt != nil {
		life = row.ExpiresAt.Sub(*row.ObtainedAt)
	}
	var oks []time.Time
	for _, e := range events {
		if e.Time.Before(from) {
			continue
		}
		switch {
		case e.Outcome == "failed":
			tl.Failures = append(tl.Failures, ts(e.Time))
		case e.Action != "revoke":
			oks = append(oks, e.Time)
			tl.Ticks = append(tl.Ticks, ts(e.Time))
		}
	}
	sort.Slice(oks, func(i, j int) bool { return oks[i].Before(oks[j]) })
	for i, start := range oks {
		end := start.Add(life)
		if i+1 < len(oks) && (life == 0 || oks[i+1].Before(end)) {
			end = oks[i+1]
		}
		if i == len(oks)-1 && row.ExpiresAt != nil {
			end = *row.ExpiresAt
		}
		if !end.After(start) {
			continue
		}
		tl.Bars = append(tl.Bars, [2]string{ts(start), ts(end)})
	}
	if life > 0 {
		step := time.Duration(float64(life) * tokenbroker.DefaultRefreshFraction)
		for at := row.ObtainedAt.Add(step); at.Before(now.Add(24*time.Hour)) && len(tl.Planned) < 100; at = at.Add(step) {
			if at.After(now) {
				tl.Planned = append(tl.Planned, ts(at))
			}
		}
	}
	return tl
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// webhookLog records webhook outcomes for the dashboard, next to the metrics.
type webhookLog struct {
	hookMetrics
	log *deliveryLog
}

func (w webhookLog) Accepted(profile string) {
	w.hookMetrics.Accepted(profile)
	w.log.add(deliveryRow{Profile: profile, Outcome: "accepted"})
}

func (w webhookLog) Refused(profile string, reason webhook.Reason) {
	w.hookMetrics.Refused(profile, reason)
	if profile != "" { // not a webhook profile: counted, not listed
		w.log.add(deliveryRow{Profile: profile, Outcome: "refused", Reason: string(reason)})
	}
}

func (w webhookLog) Forwarded(profile string, n int) {
	w.hookMetrics.Forwarded(profile, n)
	w.log.add(deliveryRow{Profile: profile, Outcome: "forwarded", Count: n})
}

func (w webhookLog) Failed(profile string) {
	w.hookMetrics.Failed(profile)
	w.log.add(deliveryRow{Profile: profile, Outcome: "failed"})
}
