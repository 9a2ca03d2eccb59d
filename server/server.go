// Package server is `tokenbroker serve`: the local token API, the
// authenticating proxy, the background refresher and the metrics, behind one
// broker key.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/clock"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/every"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/proxy"
	"github.com/tokenbroker/tokenbroker/refresh"
	"github.com/tokenbroker/tokenbroker/status"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/webhook"
)

// Options configure a Server.
type Options struct {
	// Store is shared by every broker the server builds (one per config load).
	Store store.Store
	// APIKey is the broker key callers present as a Bearer token.
	APIKey string
	Log    *slog.Logger
	// Broker is the template of each broker's options (HTTP client, clock);
	// Store, Observer and Warn are set by the server.
	Broker tokenbroker.Options
	// RefreshClock drives the background refresher; Broker.Clock (the one
	// time source) when nil.
	RefreshClock refresh.Clock
	// LoadConfig reads the configuration again for POST /v1/reload (the
	// reload of every platform, SIGHUP's where there is none); nil: the
	// route answers that this server cannot reload.
	LoadConfig func() (*config.Config, error)
}

// Server serves one configuration at a time; Reload swaps it.
type Server struct {
	opts    Options
	keyHash [32]byte
	bearer  []byte // "Bearer <key>"
	broker  atomic.Pointer[tokenbroker.Broker]
	retired retiredBrokers // replaced by reloads: closed with the server
	metrics *metrics
	sched   *refresh.Scheduler
	proxy   *proxy.Handler
	mux     *http.ServeMux

	hooks    *webhook.Dispatcher // nil when the store keeps no webhook queue
	receiver *webhook.Receiver

	limits      config.Serve              // the serve: block, defaults filled
	accounts    *tokenbroker.Accounts     // kept across reloads: a reload does not reset a vendor's count
	tenantCalls tenantCalls               // proxied calls per MSP tenant
	clients     atomic.Pointer[clientSet] // the clients' keys, by digest; replaced on reload
	refusals    every.Limiter             // one audit record per client and rule per 10 s
	sinks       sinkStates                // the token files and their last failures
	budgets     clientBudgets             // each client's own share of each profile's limits

	sessions   sessions
	traffic    *traffic
	deliveries *deliveryLog
}

// New builds a server for cfg.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.APIKey == "" {
		return nil, errors.New("server: no broker key")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, keyHash: sha256.Sum256([]byte(opts.APIKey)), bearer: []byte("Bearer " + opts.APIKey),
		sessions: sessions{m: map[string]session{}}, traffic: newTraffic(), deliveries: &deliveryLog{}}
	s.limits = cfg.Serve.WithDefaults()
	s.accounts = tokenbroker.NewAccounts()
	s.metrics = newMetrics(clock.Or(opts.Broker.Clock).Now, s.statusRows)
	s.metrics.shares = s.accounts.Shares
	cs, err := newClientSet(cfg, s.keyHash)
	if err != nil {
		return nil, err
	}
	s.clients.Store(cs)
	if err := checkSinkDirs(cfg); err != nil {
		return nil, err
	}
	s.Reload(cfg)
	refreshClock := opts.RefreshClock
	if refreshClock == nil {
		refreshClock = clock.Or(opts.Broker.Clock)
	}
	s.sched = refresh.New(refresh.Broker(s.Broker), refreshClock, opts.Log)
	s.sched.Set(cfg.Names())
	s.proxy = &proxy.Handler{Broker: s.Broker, Log: opts.Log, Served: s.served, WriteTimeout: s.limits.WriteTimeout}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	// Clients reach /v1/profiles (their own), their token routes and the
	// proxy (see clients.go); the rest is the administrator's.
	s.mux.HandleFunc("GET /readyz", s.auth(s.adminOnly(s.readyz)))
	s.mux.HandleFunc("GET /v1/profiles", s.auth(s.profiles))
	s.mux.HandleFunc("GET /v1/profiles/{name}/token", s.auth(s.tokenGate(s.token)))
	s.mux.HandleFunc("GET /v1/profiles/{name}/tenants/{tenant}/token", s.auth(s.tokenGate(s.token)))
	s.mux.HandleFunc("GET /v1/profiles/{name}/tenants", s.auth(s.tenants))
	s.mux.HandleFunc("POST /v1/profiles/{name}/refresh", s.auth(s.adminOnly(s.refresh)))
	s.mux.HandleFunc("GET /metrics", s.auth(s.adminOnly(s.metrics.handler)))
	s.mux.HandleFunc("POST /v1/reload", s.auth(s.adminOnly(s.reload)))
	s.dashboard()
	if q, ok := opts.Store.(store.Webhooks); ok {
		now := clock.Or(opts.Broker.Clock).Now
		tokens := &webhook.Tokens{Broker: s.Broker, Store: q, Now: now}
		s.hooks = &webhook.Dispatcher{Store: opts.Store, Owner: store.NewOwner(), Log: opts.Log, Observe: webhookLog{hookMetrics{s.metrics}, s.deliveries}}
		s.receiver = &webhook.Receiver{Broker: s.Broker, Store: q, Tokens: tokens, Now: now, Observe: webhookLog{hookMetrics{s.metrics}, s.deliveries}, Queued: s.hooks.Wake}
		// Authenticated by each delivery's signature, not by the broker key.
		s.mux.Handle("POST /webhooks/{name}", s.receiver)
		if err := s.setWebhookRoutes(cfg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// setWebhookRoutes opens the sink of every configured webhook.
func (s *Server) setWebhookRoutes(cfg *config.Config) error {
	var routes []webhook.Route
	for _, name := range cfg.Names() {
		for _, wh := range cfg.Profiles[name].Webhooks {
			if wh.ID == "" {
				return failure.New(failure.Config, "profile %q: every webhook needs `id`", name)
			}
			spec := wh.Sink
			if spec == "" {
				spec = "stdout"
			}
			sink, err := webhook.OpenSink(spec)
			if err != nil {
				for _, r := range routes {
					r.Sink.Close()
				}
				return &failure.Error{Kind: failure.Config, Profile: name, Msg: "webhook " + wh.ID, Err: err}
			}
			routes = append(routes, webhook.Route{Profile: name, Webhook: wh.ID, Sink: sink})
		}
	}
	s.hooks.SetRoutes(routes)
	return nil
}

// served records a proxied request for the metrics and the dashboard.
func (s *Server) served(r *http.Request, profile, tenant string, status int) {
	client := "admin"
	if c := clientOf(r); c != nil {
		client = c.Name
	}
	s.metrics.served(profile, client, status)
	b := s.Broker()
	rem, _, known := b.Quota(profile)
	now := time.Now()
	s.traffic.add(profile, now, rem, known)
	if tenant != "" {
		// By its id, however the caller named it (the list is in memory).
		if _, t, err := b.Tenant(context.Background(), profile+"/"+tenant); err == nil {
			s.metrics.tenantServed(profile, t.ID)
			s.tenantCalls.add(profile, t.ID, now)
		}
	}
}

// retiredBrokers are the brokers reloads replaced. They are closed with
// the server, not at the reload: requests in flight finish on them.
type retiredBrokers struct {
	mu   sync.Mutex
	list []*tokenbroker.Broker
}

func (r *retiredBrokers) add(b *tokenbroker.Broker) {
	if b == nil {
		return
	}
	r.mu.Lock()
	r.list = append(r.list, b)
	r.mu.Unlock()
}

// Close closes the server's brokers, the current one and those reloads
// replaced, once requests have drained and the refresher has stopped: each
// waits for its renewals that have sent a request, so that the vendor's
// answers (which may rotate refresh tokens) are stored before the store
// closes. The store, given in Options, stays the caller's to close.
func (s *Server) Close() {
	s.retired.mu.Lock()
	all := append(s.retired.list, s.broker.Load())
	s.retired.list = nil
	s.retired.mu.Unlock()
	for _, b := range all {
		b.Close()
	}
}

// Broker is the broker of the current configuration.
func (s *Server) Broker() *tokenbroker.Broker { return s.broker.Load() }

// Reload switches to a new configuration; requests in flight finish on the
// old one.
func (s *Server) Reload(cfg *config.Config) {
	o := s.opts.Broker
	o.Store = s.opts.Store
	o.Observer = s.metrics
	o.Warn = func(msg string) { s.opts.Log.Warn(msg) }
	o.Accounts = s.accounts
	b := tokenbroker.New(cfg, o)
	b.JoinLimits()
	s.retired.add(s.broker.Swap(b))
	if cs, err := newClientSet(cfg, s.keyHash); err != nil {
		s.opts.Log.Error("clients not reloaded, keeping their keys as they were", "error", err)
	} else {
		s.clients.Store(cs)
	}
	for _, w := range cfg.UnmatchedPatterns() {
		s.opts.Log.Warn(w)
	}
	if s.sched != nil {
		s.sched.Set(cfg.Names())
	}
	if s.hooks != nil {
		if err := s.setWebhookRoutes(cfg); err != nil {
			s.opts.Log.Error("webhook sinks not reloaded", "error", err)
		}
	}
	s.opts.Log.Info("configuration loaded", "profiles", len(cfg.Profiles), "config", cfg.Path)
}

// Run runs the background refresher until ctx ends, and, when replicas
// share the store, drops tokens in memory that another replica replaced.
func (s *Server) Run(ctx context.Context) {
	defer s.accounts.Close() // the shares of the limits go back to the other replicas
	if w, ok := s.opts.Store.(store.Watcher); ok {
		w.Watch(ctx, func(profile string) { s.Broker().Invalidate(profile) })
	}
	if s.hooks != nil {
		done := make(chan struct{})
		go func() { s.hooks.Run(ctx); close(done) }()
		defer func() { <-done }()
	}
	discovered := make(chan struct{})
	go func() { s.discoverTenants(ctx); close(discovered) }()
	defer func() { <-discovered }()
	sinksDone := make(chan struct{})
	go func() { s.runSinks(ctx); close(sinksDone) }()
	defer func() { <-sinksDone }()
	flushed := make(chan struct{})
	go func() { s.flushTenantCalls(ctx); close(flushed) }()
	defer func() { <-flushed }()
	keysFollowed := make(chan struct{})
	go func() { s.followKeys(ctx); close(keysFollowed) }()
	defer func() { <-keysFollowed }()
	s.sched.Run(ctx)
}

// Handler is the whole HTTP interface. The proxy sees the raw path, before
// the mux cleans it, so that a path trying to escape is refused, not
// rewritten.
//
// The token route, the one scripts call most, is matched before the mux
// too when its path is plain (one clean segment for the name); any other
// form goes through the mux, which answers it the same way.
func (s *Server) Handler() http.Handler {
	proxied := s.auth(s.proxyGate(s.proxy.ServeHTTP))
	token := s.auth(s.tokenGate(s.token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, proxy.Prefix) {
			proxied(w, r)
			return
		}
		if r.ContentLength != 0 {
			// The other routes take small bodies (webhook deliveries,
			// dashboard forms), or none: a body must arrive within the
			// header's time, and what a handler leaves unread is drained
			// within it too.
			httpx.BoundBody(w, r, s.limits.ReadHeaderTimeout, 0)
		}
		if name, ok := tokenRoute(r); ok {
			r.SetPathValue("name", name)
			token(w, r)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// tokenRoute matches GET /v1/profiles/{name}/token with a plain name.
func tokenRoute(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || r.URL.RawPath != "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/profiles/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/token")
	if !ok || name == "" || name == "." || name == ".." || strings.IndexByte(name, '/') >= 0 {
		return "", false
	}
	return name, true
}

// auth requires the broker key, compared in constant time, and removes it
// so it can never be forwarded.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if s.authorized([]byte(v)) {
			r.Header.Del("Authorization")
			next(w, r)
			return
		}
		if key, ok := strings.CutPrefix(v, "Bearer "); ok {
			if c := s.clients.Load().find([]byte(key)); c != nil {
				r.Header.Del("Authorization")
				// The audit events its call causes name it too.
				ctx := tokenbroker.WithClient(context.WithValue(r.Context(), callerKey{}, c), c.Name)
				next(w, r.WithContext(ctx))
				return
			}
		}
		// The body, if any, is not read: the connection closes after
		// the answer instead of waiting to drain it.
		w.Header().Set("Connection", "close")
		http.NewResponseController(w).SetReadDeadline(time.Now())
		w.Header().Set("WWW-Authenticate", `Bearer realm="tokenbroker"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized",
			"message": "send the broker key, or a client's key, as `Authorization: Bearer <key>` (TOKENBROKER_API_KEY or the key file serve named at start)"})
	}
}

// authorized checks an Authorization value against "Bearer <key>" in
// constant time (for a value of the key's length, which is not secret).
func (s *Server) authorized(value []byte) bool {
	return subtle.ConstantTimeCompare(value, s.bearer) == 1
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready when every profile holds a valid token or is known to need
// a person.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	// A load balancer's probe gets its answer within a second whatever the
	// database does: a state that cannot be read in time is not ready.
	ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
	defer cancel()
	rows, err := status.Of(ctx, s.Broker())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": err.Error()})
		return
	}
	ready := true
	states := map[string]string{}
	for _, row := range rows {
		states[row.Profile] = row.State
		switch row.State {
		case status.Valid, status.Expiring, status.NeedsLogin:
		default:
			ready = false
		}
	}
	body := map[string]any{"profiles": states}
	// A replica whose share of a vendor's limit ran out calls nothing there:
	// a load balancer should send its callers to the others.
	var lost []string
	for _, sh := range s.accounts.Shares() {
		if sh.Lost {
			lost = append(lost, sh.Profile)
		}
	}
	if len(lost) > 0 {
		ready = false
		sort.Strings(lost)
		body["rate_limit_share_lost"] = lost
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	body["ready"] = ready
	writeJSON(w, code, body)
}

// readyzTimeout bounds /readyz's look at the state.
const readyzTimeout = time.Second

// profileView is a profile as the API lists it: no secrets.
type profileView struct {
	status.Row
	SinkError string `json:"sink_error,omitempty"` // the last failure of its token files
	Provider  string `json:"provider"`
	APIBase   string `json:"api_base,omitempty"`
}

func (s *Server) profiles(w http.ResponseWriter, r *http.Request) {
	b := s.Broker()
	rows, err := status.Of(r.Context(), b)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]profileView, 0, len(rows))
	client := clientOf(r)
	for _, row := range rows {
		if client != nil && !client.Sees(row.Profile) {
			continue // a client sees its own profiles only
		}
		v := profileView{Row: row, SinkError: s.sinkError(row.Profile)}
		if prof, err := b.Config().Profile(row.Profile); err == nil {
			v.Provider = prof.Provider
		}
		if p, err := b.Provider(row.Profile); err == nil {
			v.APIBase = p.Describe().APIBase
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// reload reads the configuration again and switches to it, as SIGHUP does.
// A configuration that does not load is refused and the current one kept.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.LoadConfig == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "not_supported", "message": "this server was not given a way to read its configuration again"})
		return
	}
	config.ForgetExecSecrets()
	cfg, err := s.opts.LoadConfig()
	if err != nil {
		writeError(w, err)
		return
	}
	s.Reload(cfg)
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "profiles": len(cfg.Profiles), "clients": len(cfg.Clients)})
}

// tokenName is the token route's PROFILE, or PROFILE/TENANT on the
// tenant route.
func tokenName(r *http.Request) string {
	if t := r.PathValue("tenant"); t != "" {
		return r.PathValue("name") + "/" + t
	}
	return r.PathValue("name")
}

// tenants lists an MSP profile's tenants, listed or discovered.
func (s *Server) tenants(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if c := clientOf(r); c != nil && !c.Sees(name) {
		s.scope(w, r, c, name, "") // refused: not one of its profiles
		return
	}
	list, at, err := s.Broker().Tenants(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	type row struct {
		config.Tenant
		Calls    int64  `json:"calls"`               // proxied calls since serve started
		LastCall string `json:"last_call,omitempty"` // the last one's time
	}
	client := clientOf(r)
	rows := make([]row, 0, len(list))
	for _, t := range list {
		if client != nil && !client.Covers(name, &t) {
			continue // a client sees the tenants it may use
		}
		rows = append(rows, row{Tenant: t})
		i := len(rows) - 1
		if n, last := s.tenantCalls.get(name, t.ID); n > 0 {
			rows[i].Calls, rows[i].LastCall = n, last.UTC().Format(time.RFC3339)
		}
	}
	body := map[string]any{"profile": name, "tenants": rows}
	if !at.IsZero() {
		body["discovered_at"] = at.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	o := tokenbroker.TokenOptions{}
	if r.URL.RawQuery == "" {
		j, err := s.Broker().HandoutJSON(r.Context(), tokenName(r))
		if err != nil {
			writeError(w, err)
			return
		}
		h := w.Header()
		h["Content-Type"] = jsonType
		h["Cache-Control"] = noStore
		w.Write(j)
		return
	}
	if v := r.URL.Query().Get("min_ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "min_ttl: " + err.Error()})
			return
		}
		o.MinTTL = d
	}
	if v := r.URL.Query().Get("id_token"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "id_token: want true or false"})
			return
		}
		o.IDToken = b
	}
	h, err := s.Broker().Handout(r.Context(), tokenName(r), o)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h, err := s.Broker().Handout(r.Context(), name, tokenbroker.TokenOptions{Force: true})
	if err != nil {
		writeError(w, err)
		return
	}
	s.sched.Now(name)
	writeJSON(w, http.StatusOK, h)
}

// writeError answers with the failure's class and plain-words message.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	class := failure.KindOf(err).String()
	switch kind := failure.KindOf(err); {
	case errors.Is(err, config.ErrUnknownProfile):
		code = http.StatusNotFound
	case errors.Is(err, config.ErrTenantRefused):
		code, class = http.StatusForbidden, "tenant_refused" // as the proxy answers it
	case kind == failure.Config:
		code = http.StatusBadRequest
	case kind == failure.RateLimited:
		code = http.StatusTooManyRequests
	case errors.Is(err, store.ErrUnavailable):
		code = http.StatusServiceUnavailable // this replica's state, not the vendor
	case kind == failure.Rejected, kind == failure.Unreachable, kind == failure.Protocol:
		code = http.StatusBadGateway
	}
	writeJSON(w, code, map[string]string{"error": class, "message": err.Error()})
}

// Header values shared by every answer, not allocated per request.
var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// statusRows reads what the scrape-time gauges show, from the current
// broker.
func (s *Server) statusRows(ctx context.Context) ([]statusRow, error) {
	b := s.Broker()
	rows, err := status.Of(ctx, b)
	if err != nil {
		return nil, err
	}
	out := make([]statusRow, len(rows))
	for i, r := range rows {
		out[i] = statusRow{profile: r.Profile, state: r.State, expires: r.ExpiresAt, refreshUntil: r.RefreshExpiresAt}
		out[i].remaining, out[i].limit, out[i].quotaKnown = b.Quota(r.Profile)
	}
	return out, nil
}
