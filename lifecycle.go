package tokenbroker

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/store"
)

// Login runs the profile's interactive grant and stores the result.
func (b *Broker) Login(ctx context.Context, name string, in provider.Prompter) (*Token, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	l, ok := p.(provider.Loginer)
	if !ok {
		return nil, &failure.Error{Kind: failure.Config, Profile: name,
			Msg: p.Describe().Vendor + " has no interactive login", Hint: "use `tokenbroker token " + name + "`"}
	}
	st, err := b.store()
	if err != nil {
		return nil, err
	}
	t, err := l.Login(ctx, in)
	if err != nil {
		err = b.scrub(name, nil, failure.WithProfile(err, name))
		b.audit(st, name, "login", "authorization_code", err)
		return nil, err
	}
	return t, b.replace(ctx, name, "login", t)
}

// Import stores a token downloaded from the vendor's UI.
func (b *Broker) Import(ctx context.Context, name string, data []byte, o ImportOptions) (*Token, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	im, ok := p.(provider.Importer)
	if !ok {
		return nil, &failure.Error{Kind: failure.Config, Profile: name, Msg: p.Describe().Vendor + " tokens cannot be imported"}
	}
	if theirs, ours := provider.FileVendor(data), p.Describe().Vendor; theirs != "" && theirs != ours && !o.Force {
		return nil, &failure.Error{Kind: failure.Config, Profile: name,
			Msg:  "the file is a " + theirs + " token, and profile " + name + " is " + ours,
			Hint: "import it into a " + theirs + " profile, or pass --force if it is meant for this one"}
	}
	t, err := im.Import(data)
	if err != nil {
		return nil, err
	}
	return t, b.replace(ctx, name, "import", t)
}

// ImportOptions tune Import.
type ImportOptions struct {
	// Force takes in a file that plainly is another vendor's token.
	Force bool
}

// replace stores t over whatever is stored, for flows started by a person,
// under the profile's lease so that it cannot interleave with a renewal.
func (b *Broker) replace(ctx context.Context, name, action string, t *Token) error {
	if err := checkToken(name, t); err != nil {
		return err
	}
	st, err := b.store()
	if err != nil {
		return err
	}
	return store.WithLease(ctx, st, name, b.leaseOwner(), b.opts.LeaseTTL, func(l *store.Leased) error {
		prev, err := l.Get(ctx)
		var gen int64
		if prev != nil {
			gen = prev.Generation
		} else if err != nil {
			// An unreadable row (wrong key) is not silently replaced.
			return err
		}
		if err := l.Put(context.WithoutCancel(ctx), t, gen); err != nil {
			err = failure.WithProfile(err, name)
			b.audit(st, name, action, t.Grant, err)
			return err
		}
		b.audit(st, name, action, t.Grant, nil)
		b.remember(name, t)
		return nil
	})
}

// Revoke revokes the stored token at the vendor where it can, then forgets
// it locally. A token the vendor cannot revoke is only forgotten.
func (b *Broker) Revoke(ctx context.Context, name string, in provider.Prompter) (revokedAtVendor bool, err error) {
	p, err := b.Provider(name)
	if err != nil {
		return false, err
	}
	if p.Describe().Stateless {
		return false, nil
	}
	st, err := b.store()
	if err != nil {
		return false, err
	}
	err = store.WithLease(ctx, st, name, b.leaseOwner(), b.opts.LeaseTTL, func(l *store.Leased) error {
		t, err := l.Get(ctx)
		if err != nil || t == nil {
			return err
		}
		if r, ok := p.(provider.Revoker); ok {
			err := r.Revoke(ctx, t, in)
			switch {
			case errors.Is(err, provider.ErrNoRevocation):
				if err != provider.ErrNoRevocation { // it says why, and what to do
					b.opts.Warn(fmt.Sprintf("profile %q: not revoked at the vendor: %v", name, err))
				}
			case err != nil:
				err = b.scrub(name, t, failure.WithProfile(err, name))
				b.audit(st, name, "revoke", t.Grant, err)
				return err
			default:
				revokedAtVendor = true
			}
		}
		b.forget(name)
		if err := l.Delete(ctx); err != nil {
			return failure.WithProfile(err, name)
		}
		b.audit(st, name, "revoke", t.Grant, nil)
		return nil
	})
	return revokedAtVendor, err
}
