package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"time"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/sink"
)

// sinkEvery is how often the sinks are brought up to date: a renewal (by
// this replica or another) reaches the files within it.
const sinkEvery = time.Second

// sinkTarget is one file to keep: whose token, in which format.
type sinkTarget struct {
	profile string
	name    string // PROFILE or PROFILE/TENANT-ID
	tenant  string
	sink    config.Sink
}

// sinkStates remembers what each file holds and its last failure.
type sinkStates struct {
	mu  sync.Mutex
	m   map[string]*sinkState // by file
	err map[string]string     // profile -> its sinks' last failure, "" when fine
}

type sinkState struct {
	sum     [32]byte  // of the content written
	expires time.Time // of the token written, zero when none or unknown
	failing string    // the last failure, logged once
}

func sinkTargets(cfg *config.Config) []sinkTarget {
	var out []sinkTarget
	for _, name := range cfg.Names() {
		p := cfg.Profiles[name]
		for _, s := range p.Sinks {
			out = append(out, sinkTarget{profile: name, name: name, sink: s})
		}
		for _, t := range p.Tenants.List {
			for _, s := range t.Sinks {
				out = append(out, sinkTarget{profile: name, name: name + "/" + t.ID, tenant: t.ID, sink: s})
			}
		}
	}
	return out
}

// checkSinkDirs refuses sinks whose directories others can write.
func checkSinkDirs(cfg *config.Config) error {
	for _, t := range sinkTargets(cfg) {
		if err := sink.CheckDir(t.sink.File); err != nil {
			return failure.New(failure.Config, "%s: sink %s: %v", t.name, t.sink.File, err)
		}
	}
	return nil
}

// runSinks keeps every sink up to date until ctx ends.
func (s *Server) runSinks(ctx context.Context) {
	for {
		s.updateSinks(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sinkEvery):
		}
	}
}

// updateSinks writes each file whose content changed: a new token, or no
// token any more (then the file is emptied rather than left holding a
// dead one). A failure is logged once, counted, and shown in the
// profile's row of /v1/profiles; it never stops serve.
func (s *Server) updateSinks(ctx context.Context) {
	b := s.Broker()
	errs := map[string]string{}
	for _, t := range sinkTargets(b.Config()) {
		err := s.updateSink(ctx, b, t)
		if err != nil && errs[t.profile] == "" {
			errs[t.profile] = fmt.Sprintf("sink %s: %v", t.sink.File, err)
		}
	}
	s.sinks.mu.Lock()
	s.sinks.err = errs
	s.sinks.mu.Unlock()
}

func (s *Server) updateSink(ctx context.Context, b *tokenbroker.Broker, t sinkTarget) error {
	s.sinks.mu.Lock()
	if s.sinks.m == nil {
		s.sinks.m = map[string]*sinkState{}
	}
	st := s.sinks.m[t.sink.File]
	if st == nil {
		st = &sinkState{}
		s.sinks.m[t.sink.File] = st
	}
	s.sinks.mu.Unlock()

	tok, terr := s.sinkToken(ctx, b, t)
	if terr != nil && !gone(terr) && (st.expires.IsZero() || time.Now().Before(st.expires)) {
		// A passing trouble (the state, the vendor): the file keeps the
		// token it holds while that is still valid.
		return s.sinkFailed(t, st, terr)
	}
	data, err := sink.Render(t.sink, tok)
	if err != nil {
		return s.sinkFailed(t, st, err) // the old file is kept
	}
	sum := sha256.Sum256(data)
	if sum == st.sum && st.sum != ([32]byte{}) {
		return s.sinkFine(t, st)
	}
	mode, _ := t.sink.FileMode()
	if err := sink.Write(t.sink.File, data, os.FileMode(mode)); err != nil {
		return s.sinkFailed(t, st, err)
	}
	st.sum = sum
	st.expires = time.Time{}
	if tok != nil && tok.ExpiresAt != "" {
		st.expires, _ = time.Parse(time.RFC3339, tok.ExpiresAt)
	}
	return s.sinkFine(t, st)
}

// gone says whether err means there is no token to hand out until a
// person acts (revoked, refused, misconfigured): the file is emptied.
func gone(err error) bool {
	k := failure.KindOf(err)
	return k == failure.Rejected || k == failure.Config
}

func (s *Server) sinkToken(ctx context.Context, b *tokenbroker.Broker, t sinkTarget) (*sink.Token, error) {
	h, err := b.Handout(ctx, t.name, tokenbroker.TokenOptions{})
	if err != nil {
		return nil, err
	}
	out := &sink.Token{Profile: t.name, Tenant: t.tenant, AccessToken: h.AccessToken, TokenType: h.TokenType, ExpiresAt: h.ExpiresAt, Headers: h.Headers}
	if p, err := b.Provider(t.profile); err == nil {
		out.BaseURL = p.Describe().APIBase
	}
	return out, nil
}

func (s *Server) sinkFailed(t sinkTarget, st *sinkState, err error) error {
	s.metrics.counter("tokenbroker_sink_failures_total", "profile", t.name).Inc()
	if msg := err.Error(); msg != st.failing {
		st.failing = msg
		s.opts.Log.Warn("token file not written", "profile", t.name, "file", t.sink.File, "error", err)
	}
	return err
}

func (s *Server) sinkFine(t sinkTarget, st *sinkState) error {
	if st.failing != "" {
		st.failing = ""
		s.opts.Log.Info("token file written again", "profile", t.name, "file", t.sink.File)
	}
	return nil
}

// sinkError is a profile's sinks' last failure, "" when they are fine.
func (s *Server) sinkError(profile string) string {
	s.sinks.mu.Lock()
	defer s.sinks.mu.Unlock()
	return s.sinks.err[profile]
}
