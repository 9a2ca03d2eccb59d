package tokenbroker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

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
		b.audit(ctx, st, name, "login", "authorization_code", err)
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
			b.audit(ctx, st, name, action, t.Grant, err)
			return err
		}
		b.audit(ctx, st, name, action, t.Grant, nil)
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
				b.audit(ctx, st, name, "revoke", t.Grant, err)
				return err
			default:
				revokedAtVendor = true
			}
		}
		b.forget(name)
		if err := l.Delete(ctx); err != nil {
			return failure.WithProfile(err, name)
		}
		b.audit(ctx, st, name, "revoke", t.Grant, nil)
		return nil
	})
	return revokedAtVendor, err
}

// configuredSeed is the hash of the profile's configured refresh_token,
// which names the seed in the store without keeping it.
func (b *Broker) configuredSeed(name string) (string, error) {
	prof, err := b.cfg.Profile(name)
	if err != nil {
		return "", err
	}
	seed, err := prof.RefreshToken.Resolve()
	if err != nil {
		return "", &failure.Error{Kind: failure.Config, Profile: name, Msg: "refresh_token: " + err.Error()}
	}
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:]), nil
}

// seedNeeded says what to do when the only way to a token is the
// configured refresh_token seed, which renewals never present on their own.
func (b *Broker) seedNeeded(ctx context.Context, st store.Store, name string, prev *Token) error {
	hash, err := b.configuredSeed(name)
	if err != nil {
		return err
	}
	if seeds, ok := st.(store.Seeds); ok {
		if at, taken, err := seeds.SeedTaken(ctx, name, hash); err == nil && taken {
			return &failure.Error{Kind: failure.Rejected, Profile: name,
				Msg:  "no usable refresh token is stored, and the configured refresh_token was taken in on " + at.UTC().Format(time.RFC3339) + " already (it is single-use)",
				Hint: "get a new refresh token from the server, put it in the config, and run `tokenbroker import " + name + " --refresh-token`"}
		}
	}
	const why = "the configured refresh_token has not been taken in: tokenbroker never presents it on its own, because it is single-use"
	msg := why
	if prev != nil {
		msg = "the stored refresh token has expired, and " + why
	}
	return &failure.Error{Kind: failure.Rejected, Profile: name, Msg: msg,
		Hint: "run `tokenbroker import " + name + " --refresh-token` once, on one machine"}
}

// TakeSeed takes in the profile's configured refresh_token seed: it is
// presented to the server once, the token stored, and its hash kept, so
// that this state never presents the same seed again (servers with reuse
// detection revoke the chain for it).
func (b *Broker) TakeSeed(ctx context.Context, name string) (*Token, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	if !p.Describe().SeedOnly {
		return nil, &failure.Error{Kind: failure.Config, Profile: name, Msg: "the profile has no refresh_token seed to take in",
			Hint: "set `grant: refresh_token` and `refresh_token:` in the profile"}
	}
	hash, err := b.configuredSeed(name)
	if err != nil {
		return nil, err
	}
	st, err := b.store()
	if err != nil {
		return nil, err
	}
	seeds, _ := st.(store.Seeds)
	var out *Token
	err = store.WithLease(ctx, st, name, b.leaseOwner(), b.opts.LeaseTTL, func(l *store.Leased) error {
		if seeds != nil {
			at, taken, err := seeds.SeedTaken(ctx, name, hash)
			if err != nil {
				return err
			}
			if taken {
				return &failure.Error{Kind: failure.Config, Profile: name,
					Msg:  "this refresh_token was taken in on " + at.UTC().Format(time.RFC3339) + " already; presenting it again would revoke the chain at servers with reuse detection",
					Hint: "put a new refresh token in the config to start over"}
			}
		}
		prev, err := l.Get(ctx)
		if err != nil {
			return err
		}
		t, err := p.Obtain(ctx, nil) // a nil token: the provider presents the seed
		if failure.KindOf(err) != failure.Config && seeds != nil {
			// It was (or may have been) presented: never again.
			if serr := seeds.TakeSeed(context.WithoutCancel(ctx), name, hash, b.opts.Now()); serr != nil && err == nil {
				err = serr
			}
		}
		if err == nil {
			err = checkToken(name, t)
		}
		if err = b.scrub(name, nil, err); err != nil {
			b.audit(ctx, st, name, "import", "refresh_token", err)
			return err
		}
		var gen int64
		if prev != nil {
			gen = prev.Generation
		}
		if err := l.Put(context.WithoutCancel(ctx), t, gen); err != nil {
			return failure.WithProfile(err, name)
		}
		b.audit(ctx, st, name, "import", t.Grant, nil)
		b.remember(name, t)
		out = t
		return nil
	})
	return out, err
}
