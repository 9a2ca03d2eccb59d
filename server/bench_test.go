package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
)

// The proxy against a plain httputil.ReverseProxy on a tuned transport,
// both over real loopback connections to the same upstream, in one run:
// compare their ns/op (go test -run - -bench Proxy ./server).

var benchBody = []byte(`{"id":"ap-1","name":"6c:f3:7f:c3:5d:92","model":"AP-134","status":"Up","serial":"AX0140586"}`)

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(benchBody)
	}))
	b.Cleanup(up.Close)
	return up
}

func benchLoad(b *testing.B, url string, key string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for pb.Next() {
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkProxyTokenbroker(b *testing.B) {
	up := benchUpstream(b)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(b.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "static", BaseURL: up.URL, APIKey: "vendor-key"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := New(cfg, Options{Store: st, APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(srv.Handler())
	defer front.Close()
	benchLoad(b, front.URL+"/proxy/p/item", testKey)
}

func BenchmarkProxyReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer vendor-key")
		},
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, DisableCompression: true},
	}
	front := httptest.NewServer(rp)
	defer front.Close()
	benchLoad(b, front.URL+"/item", "")
}
