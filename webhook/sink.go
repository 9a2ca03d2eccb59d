package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/store"
)

// Sink is where accepted deliveries go. Deliver is at-least-once from the
// dispatcher's side: it may see a delivery again after a crash, and the sink
// keeps each delivery once.
type Sink interface {
	Deliver(ctx context.Context, ds []store.Delivery) error
	Close() error
}

// Line is one delivery as sinks write it (a JSON line).
type Line struct {
	DeliveryID   string          `json:"delivery_id"`
	Service      string          `json:"service"`
	Timestamp    string          `json:"timestamp"` // RFC 3339, from the sender's timestamp
	RawTimestamp string          `json:"raw_timestamp"`
	Profile      string          `json:"profile"`
	Webhook      string          `json:"webhook"`
	ReceivedAt   string          `json:"received_at"`
	Alert        json.RawMessage `json:"alert"`
}

// NewLine shapes a delivery for a sink; a body that is not JSON is kept as a
// JSON string.
func NewLine(d store.Delivery) Line {
	l := Line{DeliveryID: d.ID, Service: d.Service, RawTimestamp: d.Timestamp, Profile: d.Profile, Webhook: d.Webhook,
		ReceivedAt: d.ReceivedAt.UTC().Format(time.RFC3339Nano)}
	if at, err := ParseTimestamp(d.Timestamp); err == nil {
		l.Timestamp = at.UTC().Format(time.RFC3339)
	}
	if json.Valid(d.Body) {
		l.Alert = json.RawMessage(d.Body)
	} else {
		l.Alert, _ = json.Marshal(string(d.Body))
	}
	return l
}

// OpenSink opens a sink from its config: file:PATH, http(s)://URL or stdout.
func OpenSink(spec string) (Sink, error) {
	switch {
	case spec == "stdout":
		return &writerSink{w: os.Stdout, seen: map[string]bool{}}, nil
	case strings.HasPrefix(spec, "file:"):
		return openFileSink(strings.TrimPrefix(spec, "file:"))
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		if _, err := httpx.CheckURL(spec); err != nil {
			return nil, err
		}
		return &httpSink{url: spec, hc: httpx.New(httpx.Options{Timeout: 30 * time.Second, MaxBody: 64 << 10})}, nil
	}
	return nil, fmt.Errorf("sink %q: use file:PATH, http(s)://URL or stdout", spec)
}

// writerSink writes JSON lines, skipping delivery ids it has written.
type writerSink struct {
	mu   sync.Mutex
	w    io.Writer
	f    *os.File // nil for stdout
	seen map[string]bool
}

// openFileSink appends to path, first reading the delivery ids already in
// it, so a delivery forwarded again after a crash is not written twice.
func openFileSink(path string) (*writerSink, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("file sink %s: %w", path, err)
	}
	s := &writerSink{w: f, f: f, seen: map[string]bool{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 2*MaxBody)
	for sc.Scan() {
		var l struct {
			Profile    string `json:"profile"`
			DeliveryID string `json:"delivery_id"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.DeliveryID != "" {
			s.seen[l.Profile+"\x00"+l.DeliveryID] = true
		}
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("file sink %s: reading the deliveries already in it: %w", path, err)
	}
	return s, nil
}

func (s *writerSink) Deliver(_ context.Context, ds []store.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf bytes.Buffer
	var keys []string
	for _, d := range ds {
		k := d.Profile + "\x00" + d.ID
		if s.seen[k] {
			continue
		}
		b, err := json.Marshal(NewLine(d))
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		keys = append(keys, k)
	}
	if buf.Len() == 0 {
		return nil
	}
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return err
	}
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return err
		}
	}
	for _, k := range keys {
		s.seen[k] = true
	}
	return nil
}

func (s *writerSink) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// httpSink POSTs each delivery as its JSON line. The receiver de-duplicates
// by X-Tokenbroker-Delivery-Id (a POST may be repeated after a crash).
type httpSink struct {
	url string
	hc  *http.Client
}

func (s *httpSink) Deliver(ctx context.Context, ds []store.Delivery) error {
	for _, d := range ds {
		b, err := json.Marshal(NewLine(d))
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Tokenbroker-Delivery-Id", d.ID)
		resp, err := s.hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return errors.New("the sink answered " + resp.Status)
		}
	}
	return nil
}

func (s *httpSink) Close() error { return nil }
