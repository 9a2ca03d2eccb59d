package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/proxy"
)

// exitCode is a child's exit code, returned as ours (no message).
type exitCode int

func (e exitCode) Error() string { return "the command exited with " + strconv.Itoa(int(e)) }

// execServe runs argv as a child beside a proxy for the profile (or its
// tenant) on a random loopback port, with a random key that lives as long
// as the child, as aws-vault's credential server does: the child's calls
// through it always carry a live token, renewed as the vendor requires.
func execServe(b *tokenbroker.Broker, profile string, tenant *config.Tenant, argv, env []string) error {
	raw := make([]byte, 32)
	rand.Read(raw)
	key := base64.RawURLEncoding.EncodeToString(raw)
	bearer := []byte("Bearer " + key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ph := &proxy.Handler{Broker: func() *tokenbroker.Broker { return b }, WriteTimeout: time.Minute}
	base := proxy.Prefix + profile
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), bearer) != 1 {
			http.Error(w, "send Authorization: Bearer $TOKENBROKER_PROXY_KEY", http.StatusUnauthorized)
			return
		}
		if !strings.HasPrefix(r.URL.EscapedPath(), base+"/") {
			http.Error(w, "this proxy serves "+base+"/ only ($TOKENBROKER_PROXY_URL)", http.StatusNotFound)
			return
		}
		r.Header.Del("Authorization")
		r.Header.Del(tokenbroker.TenantHeader)
		if tenant != nil {
			r.Header.Set(tokenbroker.TenantHeader, tenant.ID)
		}
		ph.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	return runChild(argv, append(env, "TOKENBROKER_PROXY_URL=http://"+ln.Addr().String()+base, "TOKENBROKER_PROXY_KEY="+key))
}

// runChild runs argv with env as our child, with our standard streams,
// forwards the signals we get to it, and returns its exit code as ours.
func runChild(argv, env []string) error {
	child := exec.Command(argv[0], argv[1:]...)
	child.Env = env
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := child.Start(); err != nil {
		return &failure.Error{Kind: failure.Config, Msg: "cannot run " + argv[0], Err: err}
	}
	go func() {
		for s := range sigs {
			forward(child.Process, s)
		}
	}()
	err := child.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return exitCode(exitCodeOf(ee))
	}
	return err
}
