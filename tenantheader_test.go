package tokenbroker

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
)

// The vendor's tenant header goes out spelled as the vendor documents it
// (Aruba's TenantID), once: a caller's own header of that name, in any
// case, never reaches the vendor beside it.
func TestTenantHeaderSpelledAsDocumentedAndNotDoubled(t *testing.T) {
	a := emulator.NewAruba(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := textproto.NewReader(bufio.NewReader(c))
		var lines []string
		for {
			l, err := r.ReadLine()
			if err != nil || l == "" {
				break
			}
			lines = append(lines, l)
		}
		raw <- lines
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"))
	}()
	base := "http://" + ln.Addr().String()
	b := brokerOn(t, map[string]*config.Profile{
		"msp": {Name: "msp", Provider: "aruba-central", BaseURL: base, ClientID: config.Secret(a.ClientID),
			ClientSecret: config.Secret(a.ClientSecret), DelegateTenant: "cust-42"},
	}, Options{})
	if _, err := b.Import(context.Background(), "msp", a.IssueOfflineToken(), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	hc, err := b.HTTPClient("msp")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/monitoring/v1/aps", nil)
	req.Header.Set("Tenantid", "someone-else")
	req.Header["tenantid"] = []string{"and-another"}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var tenant []string
	for _, l := range <-raw {
		if name, value, _ := strings.Cut(l, ":"); strings.EqualFold(name, "TenantID") {
			tenant = append(tenant, name+":"+strings.TrimSpace(value))
		}
	}
	if len(tenant) != 1 || tenant[0] != "TenantID:cust-42" {
		t.Errorf("tenant header lines at the vendor: %q, want exactly [TenantID:cust-42]", tenant)
	}
}
