package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// A state whose driver the program did not import is a config error that
// names the import to add; a registered driver is found by its scheme.
func TestLookupNamesTheMissingImport(t *testing.T) {
	_, _, err := store.Lookup("postgres://db.example/tb")
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Kind != failure.Config || !strings.Contains(fe.Hint, `"github.com/tokenbroker/tokenbroker/store/postgres"`) {
		t.Fatalf("unregistered postgres: %#v", err)
	}
	store.Register("testkind", store.Driver{
		Open:   func(context.Context, string, *seal.Sealer) (store.Store, error) { return nil, nil },
		KeyDir: func(string) string { return "" },
	})
	if got := store.Kinds(); !strings.Contains(strings.Join(got, ","), "testkind") {
		t.Errorf("Kinds() = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a second Register of one kind did not panic")
		}
	}()
	store.Register("testkind", store.Driver{})
}
