package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// The states of a master key the state knows of.
const (
	KeyPrimary  = "primary"  // seals every new value
	KeyAccepted = "accepted" // opens, until `rekey --retire`
	KeyRetired  = "retired"  // opens nothing any more
)

// KeyEntry is one master key a state knows of: never the key in the clear,
// only its id and, until the key that wrapped it is retired, the key
// sealed under the previous primary, so that a replica still holding that
// one learns the new key from the state and keeps serving.
type KeyEntry struct {
	ID        string
	State     string
	Wrapped   []byte
	WrappedBy string
	At        time.Time // when it took its state
}

// Sealed is one stored record holding sealed values: a token row, or a
// webhook's signing tokens (Webhook set).
type Sealed struct {
	Profile    string
	Webhook    string
	Generation int64
	Row        Row
	Value      []byte
}

// KeyTx is what a store gives the rotation inside one transaction, which
// holds the state's key lock, so that no token is written meanwhile.
type KeyTx interface {
	KeyEntries(ctx context.Context) ([]KeyEntry, error)
	// PutKeyEntries replaces the key entries whole.
	PutKeyEntries(ctx context.Context, entries []KeyEntry) error
	SealedRecords(ctx context.Context) ([]Sealed, error)
	// UpdateSealed writes a record's sealed values back, unchanged otherwise.
	UpdateSealed(ctx context.Context, r Sealed) error
}

// Rekeyer is a store whose master key can be rotated while it is in use.
type Rekeyer interface {
	// Rekey re-seals every stored secret under newKey in one transaction.
	// The keys that sealed before stay accepted, and newKey is kept in the
	// state sealed under the previous primary, so processes holding only
	// an older key learn it and keep serving.
	Rekey(ctx context.Context, newKey []byte) (Rotation, error)
	// RetireKeys re-seals whatever a process without the new key wrote
	// since, then retires every key but the primary and forgets the
	// wrapped copies: from then on only the primary opens the state. The
	// process must have been opened with the primary key itself, and the
	// primary must be older than wait (the time replicas take to learn it).
	RetireKeys(ctx context.Context, wait time.Duration) (Rotation, error)
	// Keys says which keys the state knows and how many records each seals.
	Keys(ctx context.Context) (KeyStatus, error)
	// RefreshKeys reads the state's keys again: a replica learns a new
	// primary, or that old keys were retired.
	RefreshKeys(ctx context.Context) error
}

// Rotation is what a rekey or retirement did.
type Rotation struct {
	Primary  string   // the key sealing now
	Previous string   // the key that sealed before (rekey)
	Resealed int      // records sealed again
	Retired  []string // keys retired (retire)
}

// KeyStatus is a state's keys: the entries, and the records each seals.
type KeyStatus struct {
	Entries []KeyEntry
	Sealing map[string]int // key id -> records it sealed; "?" for none held
}

// keyErr is the error of a process that cannot follow the state's keys.
func keyErr(msg, hint string) error {
	return &failure.Error{Kind: failure.Config, Msg: "master key: " + msg, Hint: hint}
}

const keyHint = "set `key:` in the config (or $TOKENBROKER_KEY) to the key given to `tokenbroker rekey --new-key`, on every replica"

// ApplyKeys brings a Sealer in line with a state's key entries: from the
// key it seals with, it follows the chain of keys each wrapped under the
// one before (each rotation's new key, sealed by whoever held the
// previous one) to the state's primary, which then seals; retired keys are
// dropped. A primary not reached that way is refused: the entries are not
// authenticated, and following an edited one could make this process seal
// under a key that someone who can write the database chose or knows. No
// entries (a state never rotated) change nothing.
func ApplyKeys(s *seal.Sealer, entries []KeyEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var primary KeyEntry
	for _, e := range entries {
		if e.State == KeyPrimary {
			primary = e
		}
	}
	if primary.ID == "" {
		return keyErr("the state's key entries name no primary key: they were altered",
			"restore the table master_keys from a backup; nothing was written")
	}
	next := s.Clone()
	cur, retired := next.Primary(), map[string]time.Time{}
	for _, e := range entries {
		if e.State == KeyRetired {
			retired[e.ID] = e.At
		}
	}
	for seen := map[string]bool{cur: true}; cur != primary.ID; {
		i := slices.IndexFunc(entries, func(e KeyEntry) bool {
			return e.WrappedBy == cur && e.State != KeyRetired && len(e.Wrapped) > 0 && !seen[e.ID]
		})
		if i < 0 {
			break
		}
		e := entries[i]
		k, err := next.Unwrap(e.ID, e.Wrapped)
		if err != nil {
			return keyErr(fmt.Sprintf("the wrapped key %s in the state does not open under key %s: it was altered", e.ID, e.WrappedBy),
				"restore the table master_keys from a backup; nothing was written")
		}
		if _, err := next.Add(k); err != nil {
			return err
		}
		if err := next.Promote(e.ID); err != nil {
			return err
		}
		cur, seen[e.ID] = e.ID, true
	}
	if cur != primary.ID {
		why := ", under which that key is not wrapped"
		if at, ok := retired[cur]; ok {
			why = fmt.Sprintf(" (key %s was retired on %s)", cur, at.UTC().Format(time.DateTime+" UTC"))
		}
		return keyErr(fmt.Sprintf("the state is sealed under key %s; this process holds %s%s", primary.ID, strings.Join(next.IDs(), ", "), why), keyHint)
	}
	for id := range retired {
		if err := next.Drop(id); err != nil {
			return err
		}
	}
	s.Adopt(next)
	return nil
}

// CheckPrimary is a writer's check, inside its transaction, that it seals
// under the state's primary (named by id, "" before any rotation): when
// another process rotated since, the keys are read again. It returns the
// keyring to seal with, fixed for the rest of the transaction, so that a
// refresh running meanwhile cannot change it between check and seal.
func CheckPrimary(s *seal.Sealer, primary string, entries func() ([]KeyEntry, error)) (*seal.Sealer, error) {
	pinned := s.Clone()
	if primary == "" || pinned.Primary() == primary {
		return pinned, nil
	}
	es, err := entries()
	if err != nil {
		return nil, err
	}
	if err := ApplyKeys(pinned, es); err != nil {
		return nil, err
	}
	s.Adopt(pinned) // the store's keyring follows too
	return pinned, nil
}

// RekeyTx rotates to newKey within tx (see Rekeyer.Rekey). On success the
// store's Sealer s holds newKey as its primary.
func RekeyTx(ctx context.Context, tx KeyTx, s *seal.Sealer, newKey []byte, now time.Time) (Rotation, error) {
	entries, err := tx.KeyEntries(ctx)
	if err != nil {
		return Rotation{}, err
	}
	cur := s.Clone()
	if err := ApplyKeys(cur, entries); err != nil {
		return Rotation{}, err
	}
	old := cur.Primary()
	id := seal.KeyID(newKey)
	if id == old {
		return Rotation{}, keyErr("the new key is the key sealing the state already ("+id+")", "make a new key with `head -c 32 /dev/urandom | base64`")
	}
	for _, e := range entries {
		if e.ID == id && e.State == KeyRetired {
			return Rotation{}, keyErr("the new key "+id+" was retired before: a retired key is never used again", "make a new key with `head -c 32 /dev/urandom | base64`")
		}
	}
	next := cur.Clone()
	_, wrapped, err := next.Wrap(newKey)
	if err != nil {
		return Rotation{}, err
	}
	if _, err := next.Add(newKey); err != nil {
		return Rotation{}, err
	}
	if err := next.Promote(id); err != nil {
		return Rotation{}, err
	}
	n, err := resealAll(ctx, tx, next)
	if err != nil {
		return Rotation{}, err
	}
	if len(entries) == 0 {
		entries = []KeyEntry{{ID: old, State: KeyPrimary, At: now}}
	}
	entries = slices.DeleteFunc(entries, func(e KeyEntry) bool { return e.ID == id })
	for i := range entries {
		if entries[i].State == KeyPrimary {
			entries[i].State, entries[i].At = KeyAccepted, now
		}
	}
	entries = append(entries, KeyEntry{ID: id, State: KeyPrimary, Wrapped: wrapped, WrappedBy: old, At: now})
	if err := tx.PutKeyEntries(ctx, entries); err != nil {
		return Rotation{}, err
	}
	s.Adopt(next)
	return Rotation{Primary: id, Previous: old, Resealed: n}, nil
}

// RetireTx retires every key but the primary within tx (see
// Rekeyer.RetireKeys); opened is the id of the key the process was
// opened with.
func RetireTx(ctx context.Context, tx KeyTx, s *seal.Sealer, opened string, wait time.Duration, now time.Time) (Rotation, error) {
	entries, err := tx.KeyEntries(ctx)
	if err != nil {
		return Rotation{}, err
	}
	if len(entries) == 0 {
		return Rotation{}, keyErr("the state was never rekeyed: there is no older key to retire", "rotate first with `tokenbroker rekey --new-key REF`")
	}
	next := s.Clone()
	if err := ApplyKeys(next, entries); err != nil {
		return Rotation{}, err
	}
	if opened != next.Primary() {
		return Rotation{}, keyErr(fmt.Sprintf("this process was started with key %s, not the state's primary %s: after retiring, its config could open nothing", opened, next.Primary()),
			"set `key:` (or $TOKENBROKER_KEY) to the new key here first, then run `tokenbroker rekey --retire` again")
	}
	for _, e := range entries {
		if age := now.Sub(e.At); e.State == KeyPrimary && age < wait {
			return Rotation{}, &failure.Error{Kind: failure.Other, Msg: fmt.Sprintf("master key: key %s became the primary %s ago, and running replicas may not have read it yet", e.ID, age.Round(time.Second)),
				Hint: fmt.Sprintf("retry in %s", (wait - age).Round(time.Second))}
		}
	}
	n, err := resealAll(ctx, tx, next)
	if err != nil {
		return Rotation{}, err
	}
	var retired []string
	for i := range entries {
		e := &entries[i]
		if e.State == KeyAccepted {
			e.State, e.At = KeyRetired, now
			retired = append(retired, e.ID)
		}
		e.Wrapped, e.WrappedBy = nil, ""
	}
	if err := tx.PutKeyEntries(ctx, entries); err != nil {
		return Rotation{}, err
	}
	for _, id := range retired {
		if err := next.Drop(id); err != nil {
			return Rotation{}, err
		}
	}
	s.Adopt(next)
	return Rotation{Primary: next.Primary(), Resealed: n, Retired: retired}, nil
}

// resealAll seals under s's primary every record not yet sealed under it.
// A record that does not open fails the whole rotation, naming it, so that
// nothing is left half-rotated.
func resealAll(ctx context.Context, tx KeyTx, s *seal.Sealer) (int, error) {
	recs, err := tx.SealedRecords(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		var changed bool
		if r.Webhook != "" {
			r.Value, changed, err = s.Reseal(r.Profile, webhookField(r.Webhook), r.Value)
		} else {
			r.Row, changed, err = ResealRow(s, r.Profile, r.Generation, r.Row)
		}
		if err != nil {
			return 0, rotationErr(r, err)
		}
		if !changed {
			continue
		}
		if err := tx.UpdateSealed(ctx, r); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

func rotationErr(r Sealed, err error) error {
	what := "the stored token"
	if r.Webhook != "" {
		what = "webhook " + r.Webhook + "'s signing tokens"
	}
	return &failure.Error{Kind: failure.Other, Profile: r.Profile, Msg: what + " cannot be read, so the state was not rekeyed", Err: err,
		Hint: "nothing was changed; `tokenbroker revoke` or log in again to replace the record, then rekey"}
}

// KeysOf counts, for a state's records, which key seals each.
func KeysOf(s *seal.Sealer, recs []Sealed) map[string]int {
	counts := map[string]int{}
	for _, r := range recs {
		var id string
		var err error
		if r.Webhook != "" {
			_, id, err = s.OpenID(r.Profile, webhookField(r.Webhook), r.Value)
		} else {
			id, err = RowKey(s, r.Profile, r.Generation, r.Row)
		}
		if err != nil {
			id = "?"
		}
		counts[id]++
	}
	return counts
}

// UnsealFollowing opens a record with open; when no key held opens it, the
// state's keys are read again (another process may have rotated) and the
// record is opened once more. A process that cannot follow the rotation is
// told which key it needs.
func UnsealFollowing[T any](ctx context.Context, r Rekeyer, open func() (T, error)) (T, error) {
	v, err := open()
	if err == nil || !errors.Is(err, seal.ErrOpen) {
		return v, err
	}
	if kerr := r.RefreshKeys(ctx); kerr != nil {
		var fe *failure.Error
		if errors.As(kerr, &fe) && fe.Kind == failure.Config {
			var zero T
			return zero, kerr
		}
		return v, err // the keys could not be read: the first error says more
	}
	return open()
}

// KeysTx reads a state's keys and which seals each record, within tx (see
// Rekeyer.Keys), bringing s in line with them.
func KeysTx(ctx context.Context, tx KeyTx, s *seal.Sealer) (KeyStatus, error) {
	var st KeyStatus
	var err error
	if st.Entries, err = tx.KeyEntries(ctx); err != nil {
		return st, err
	}
	if err := ApplyKeys(s, st.Entries); err != nil {
		return st, err
	}
	recs, err := tx.SealedRecords(ctx)
	if err != nil {
		return st, err
	}
	st.Sealing = KeysOf(s, recs)
	return st, nil
}

// Rotator is a store's Rekeyer, given how the store runs a key
// transaction and reads its key entries: a store embeds one.
type Rotator struct {
	Sealer *seal.Sealer
	// Opened is the id of the key the store was opened with.
	Opened string
	// InTx runs f in one transaction that keeps every writer of sealed
	// values out; a failed f or commit rolls back.
	InTx func(ctx context.Context, f func(KeyTx) error) error
	// Read runs f on a view of the state that keeps no writer out (for
	// Keys, which only reads).
	Read func(ctx context.Context, f func(KeyTx) error) error
	// Entries reads the key entries outside a rotation.
	Entries func(ctx context.Context) ([]KeyEntry, error)
	Now     func() time.Time
}

// inTx runs f and keeps the keyring it leaves only when the transaction
// commits.
func (r *Rotator) inTx(ctx context.Context, f func(KeyTx) error) error {
	before := r.Sealer.Clone()
	err := r.InTx(ctx, f)
	if err != nil {
		r.Sealer.Adopt(before)
	}
	return err
}

// Rekey implements Rekeyer.
func (r *Rotator) Rekey(ctx context.Context, newKey []byte) (rot Rotation, err error) {
	err = r.inTx(ctx, func(tx KeyTx) error {
		rot, err = RekeyTx(ctx, tx, r.Sealer, newKey, r.Now())
		return err
	})
	return rot, err
}

// RetireKeys implements Rekeyer.
func (r *Rotator) RetireKeys(ctx context.Context, wait time.Duration) (rot Rotation, err error) {
	err = r.inTx(ctx, func(tx KeyTx) error {
		rot, err = RetireTx(ctx, tx, r.Sealer, r.Opened, wait, r.Now())
		return err
	})
	return rot, err
}

// Keys implements Rekeyer.
func (r *Rotator) Keys(ctx context.Context) (st KeyStatus, err error) {
	err = r.Read(ctx, func(tx KeyTx) error {
		st, err = KeysTx(ctx, tx, r.Sealer)
		return err
	})
	return st, err
}

// RefreshKeys implements Rekeyer.
func (r *Rotator) RefreshKeys(ctx context.Context) error {
	entries, err := r.Entries(ctx)
	if err != nil {
		return err
	}
	return ApplyKeys(r.Sealer, entries)
}
