package tokenbroker

import (
	"context"
	"testing"
)

// BenchmarkTokenFromMemory is a hit in the process's own cache.
func BenchmarkTokenFromMemory(b *testing.B) {
	br, _, _ := newTestBroker(b, &tokenServer{ttl: 3600})
	ctx := context.Background()
	if _, err := br.Token(ctx, "p", TokenOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Token(ctx, "p", TokenOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenFromStore is a hit in the store: read the row and unseal it,
// as every new process does once.
func BenchmarkTokenFromStore(b *testing.B) {
	br, _, _ := newTestBroker(b, &tokenServer{ttl: 3600})
	ctx := context.Background()
	if _, err := br.Token(ctx, "p", TokenOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		br.forget("p")
		if _, err := br.Token(ctx, "p", TokenOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
