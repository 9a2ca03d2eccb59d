package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func TestHTTPSinkPostsEachDeliveryWithItsID(t *testing.T) {
	var mu sync.Mutex
	var got []string
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var l Line
		if json.Unmarshal(b, &l) != nil || l.DeliveryID != r.Header.Get("X-Tokenbroker-Delivery-Id") {
			t.Errorf("bad delivery %s", b)
		}
		got = append(got, l.DeliveryID)
	}))
	defer srv.Close()
	sink, err := OpenSink(srv.URL + "/alerts")
	if err != nil {
		t.Fatal(err)
	}
	ds := []store.Delivery{
		{ID: "a", Service: "Alerts", Timestamp: "1573115183", Body: []byte(`{"x":1}`), ReceivedAt: time.Now()},
		{ID: "b", Service: "Alerts", Timestamp: "1573115183000", Body: []byte(`not json`), ReceivedAt: time.Now()},
	}
	if err := sink.Deliver(context.Background(), ds); err == nil {
		t.Fatal("a 503 from the sink was not reported (the dispatcher must retry)")
	}
	if err := sink.Deliver(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("posted %v", got)
	}
	if _, err := OpenSink("http://10.0.0.1/x"); err == nil {
		t.Error("plain http off loopback was accepted")
	}
	if _, err := OpenSink("ftp://x"); err == nil {
		t.Error("an unknown sink was accepted")
	}
}

func TestNewLineKeepsNonJSONBodies(t *testing.T) {
	l := NewLine(store.Delivery{ID: "x", Timestamp: "1573115183000", Body: []byte("plain text")})
	var s string
	if json.Unmarshal(l.Alert, &s) != nil || s != "plain text" || l.Timestamp != "2019-11-07T08:26:23Z" {
		t.Errorf("line %+v", l)
	}
}
