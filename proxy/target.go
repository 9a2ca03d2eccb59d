package proxy

import (
	"context"
	"net/url"
)

type targetKey struct{}

// withTarget carries the checked upstream URL to the reverse proxy's Rewrite.
func withTarget(ctx context.Context, u *url.URL) context.Context {
	return context.WithValue(ctx, targetKey{}, u)
}

func targetOf(ctx context.Context) *url.URL {
	return ctx.Value(targetKey{}).(*url.URL)
}
