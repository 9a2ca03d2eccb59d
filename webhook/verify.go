// Package webhook receives Aruba Central's webhook deliveries: it verifies
// each signature against the webhook's current and previous token, refuses
// stale, future and replayed deliveries, queues accepted ones durably in the
// store, and forwards them to their sinks exactly once.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers Central sends with every delivery.
const (
	HeaderSignature = "X-Central-Signature"
	HeaderService   = "X-Central-Service"
	HeaderDelivery  = "X-Central-Delivery-Id"
	HeaderTimestamp = "X-Central-Delivery-Timestamp"
)

// Defaults of the receiver.
const (
	DefaultWindow = 5 * time.Minute // accepted clock difference, both ways
	MaxBody       = 1 << 20
	maxHeader     = 256 // longer service, id or timestamp values are refused
)

// Reason names why a delivery was refused (a metrics label).
type Reason string

// Reasons for refusing a delivery.
const (
	ReasonMissingHeaders Reason = "missing_headers"
	ReasonBadTimestamp   Reason = "bad_timestamp"
	ReasonStale          Reason = "stale"
	ReasonFuture         Reason = "future"
	ReasonBadSignature   Reason = "bad_signature"
	ReasonReplay         Reason = "replay"
	ReasonTooLarge       Reason = "too_large"
	ReasonUnknown        Reason = "unknown_profile"
)

// Refusal is a delivery refused, with the reason and the HTTP status to answer.
type Refusal struct {
	Reason Reason
	Status int
	Msg    string
}

func (r *Refusal) Error() string { return string(r.Reason) + ": " + r.Msg }

func refuse(reason Reason, status int, msg string) *Refusal {
	return &Refusal{Reason: reason, Status: status, Msg: msg}
}

// Headers are a delivery's signed headers.
type Headers struct {
	Signature, Service, DeliveryID, Timestamp string
}

// ReadHeaders takes the four headers from a request, refusing missing or
// oversized ones.
func ReadHeaders(h http.Header) (Headers, error) {
	d := Headers{
		Signature: h.Get(HeaderSignature), Service: h.Get(HeaderService),
		DeliveryID: h.Get(HeaderDelivery), Timestamp: h.Get(HeaderTimestamp),
	}
	for _, v := range []string{d.Signature, d.Service, d.DeliveryID, d.Timestamp} {
		if v == "" {
			return d, refuse(ReasonMissingHeaders, http.StatusBadRequest,
				"a delivery needs "+HeaderSignature+", "+HeaderService+", "+HeaderDelivery+" and "+HeaderTimestamp)
		}
		if len(v) > maxHeader {
			return d, refuse(ReasonMissingHeaders, http.StatusBadRequest, "a signed header is longer than 256 bytes")
		}
	}
	return d, nil
}

// ParseTimestamp reads a delivery timestamp in seconds or milliseconds since
// the epoch: values of 13 digits or more are milliseconds.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, errors.New("the timestamp is not a positive whole number of seconds or milliseconds")
	}
	if n >= 1e12 {
		return time.UnixMilli(n), nil
	}
	return time.Unix(n, 0), nil
}

// Sign computes a delivery's signature: base64(HMAC-SHA256(token, body +
// service + delivery id + timestamp)).
func Sign(token string, body []byte, service, deliveryID, timestamp string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(body)
	m.Write([]byte(service))
	m.Write([]byte(deliveryID))
	m.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's timestamp against now (within window, both
// ways) and its signature against each token in turn, in constant time. It
// returns the index of the token that signed it.
func Verify(h Headers, body []byte, tokens []string, now time.Time, window time.Duration) (int, error) {
	at, err := ParseTimestamp(h.Timestamp)
	if err != nil {
		return -1, refuse(ReasonBadTimestamp, http.StatusBadRequest, err.Error())
	}
	switch d := now.Sub(at); {
	case d > window:
		return -1, refuse(ReasonStale, http.StatusBadRequest, "the delivery timestamp is older than the accepted window")
	case d < -window:
		return -1, refuse(ReasonFuture, http.StatusBadRequest, "the delivery timestamp is ahead of this clock by more than the accepted window")
	}
	got, err := base64.StdEncoding.DecodeString(h.Signature)
	if err != nil {
		return -1, refuse(ReasonBadSignature, http.StatusUnauthorized, "the signature is not base64")
	}
	match := -1
	for i, tok := range tokens {
		if tok == "" {
			continue
		}
		want, _ := base64.StdEncoding.DecodeString(Sign(tok, body, h.Service, h.DeliveryID, h.Timestamp))
		// Every token is compared, matched or not, so timing says nothing.
		if hmac.Equal(got, want) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return -1, refuse(ReasonBadSignature, http.StatusUnauthorized, "the signature does not match the webhook's token")
	}
	return match, nil
}
