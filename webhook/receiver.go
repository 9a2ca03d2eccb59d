package webhook

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/store"
)

// Observer counts what the receiver and the dispatcher do, for metrics.
type Observer interface {
	Accepted(profile string)
	Refused(profile string, reason Reason)
	Forwarded(profile string, n int)
	Failed(profile string)
}

type noObserver struct{}

func (noObserver) Accepted(string)        {}
func (noObserver) Refused(string, Reason) {}
func (noObserver) Forwarded(string, int)  {}
func (noObserver) Failed(string)          {}

// Receiver is POST /webhooks/{name}. It is authenticated by the delivery's
// signature, not by the broker key. An accepted delivery is in the store
// before the 2xx is sent.
type Receiver struct {
	Broker  func() *tokenbroker.Broker
	Store   store.Webhooks
	Tokens  *Tokens
	Window  time.Duration // DefaultWindow when zero
	Now     func() time.Time
	Observe Observer
	// Queued is told after each accepted delivery (to wake the dispatcher).
	Queued func()
}

func (rc *Receiver) observe() Observer {
	if rc.Observe == nil {
		return noObserver{}
	}
	return rc.Observe
}

// maxProfileName bounds the name in /webhooks/{name}: longer is no profile.
const maxProfileName = 256

// ServeHTTP implements http.Handler.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, err := rc.accept(r.Context(), name, r)
	if err != nil {
		var ref *Refusal
		if !errors.As(err, &ref) {
			ref = &Refusal{Reason: "error", Status: http.StatusServiceUnavailable, Msg: err.Error()}
		}
		if ref.Reason == ReasonUnknown {
			// Anyone may post here: a name that is no webhook profile is
			// counted under no name, so it makes no series and no entry.
			name = ""
		}
		rc.observe().Refused(name, ref.Reason)
		answer(w, ref.Status, map[string]string{"error": string(ref.Reason), "message": ref.Msg})
		return
	}
	rc.observe().Accepted(name)
	if rc.Queued != nil {
		rc.Queued()
	}
	answer(w, http.StatusOK, map[string]string{"status": "accepted", "delivery_id": d.ID})
}

func (rc *Receiver) accept(ctx context.Context, name string, r *http.Request) (*store.Delivery, error) {
	if len(name) > maxProfileName {
		return nil, refuse(ReasonUnknown, http.StatusNotFound, "no webhooks are configured for this profile")
	}
	prof, err := rc.Broker().Config().Profile(name)
	if err != nil || len(prof.Webhooks) == 0 {
		return nil, refuse(ReasonUnknown, http.StatusNotFound, "no webhooks are configured for this profile")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, refuse("read_error", http.StatusBadRequest, "reading the body: "+err.Error())
	}
	if len(body) > MaxBody {
		return nil, refuse(ReasonTooLarge, http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB")
	}
	h, err := ReadHeaders(r.Header)
	if err != nil {
		return nil, err
	}
	now, window := time.Now(), rc.Window
	if rc.Now != nil {
		now = rc.Now()
	}
	if window == 0 {
		window = DefaultWindow
	}
	// Each webhook of the profile is tried; after a miss the tokens are read
	// again, as another replica may just have rotated them.
	var refusal error
	for _, fresh := range []bool{false, true} {
		for _, wh := range prof.Webhooks {
			tokens, err := rc.Tokens.Verifying(ctx, name, wh, fresh)
			if err != nil {
				return nil, err
			}
			_, verr := Verify(h, body, tokens, now, window)
			if verr == nil {
				return rc.enqueue(ctx, name, wh.ID, h, body, now)
			}
			var ref *Refusal
			if errors.As(verr, &ref) && ref.Reason != ReasonBadSignature {
				return nil, verr // a timestamp problem is the same for every token
			}
			refusal = verr
		}
	}
	return nil, refusal
}

func (rc *Receiver) enqueue(ctx context.Context, name, wid string, h Headers, body []byte, now time.Time) (*store.Delivery, error) {
	mac, _ := base64.StdEncoding.DecodeString(h.Signature) // Verify decoded it
	d := &store.Delivery{Profile: name, Webhook: wid, ID: h.DeliveryID, Service: h.Service, Timestamp: h.Timestamp, Body: body, ReceivedAt: now,
		MAC: hex.EncodeToString(mac)}
	fresh, err := rc.Store.Enqueue(ctx, d)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, refuse(ReasonReplay, http.StatusConflict, "this delivery (its id or its signature) was received before")
	}
	return d, nil
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
