package tokenbroker

import (
	"context"
	"net"
)

// SetAPIDial makes the process's direct API client dial with dial, for
// benchmarks that serve the vendor in memory; the returned function puts
// the real dialer back.
func SetAPIDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) (restore func()) {
	defaultAPITransport()
	apiDirect.SetDial(dial)
	apiDirect.CloseIdleConnections()
	return func() { apiDirect.CloseIdleConnections(); apiDirect.SetDial(nil) }
}
