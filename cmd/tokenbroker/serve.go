package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/secretfile"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/store"
)

// drainTimeout bounds how long SIGTERM waits for requests in flight.
const drainTimeout = 30 * time.Second

func (a *app) serveCommand() *cobra.Command {
	var listen, logFormat string
	cmd := &cobra.Command{
		Use:         "serve",
		Annotations: map[string]string{allCores: ""},
		Short:       "Run the daemon: local token API, proxy, background refresher, metrics, webhooks, dashboard",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.newLogger(logFormat)
			if err != nil {
				return err
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			st, err := tokenbroker.OpenStore(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			// A replica given a master key that no longer opens the
			// state (retired by a rotation) refuses to start, saying
			// which key it needs, rather than fail every call.
			if rk, ok := st.(store.Rekeyer); ok {
				if err := rk.RefreshKeys(cmd.Context()); err != nil {
					return err
				}
			}
			key, err := apiKey(cfg.State, log)
			if err != nil {
				return err
			}
			srv, err := server.New(cfg, server.Options{Store: st, APIKey: key, Log: log, LoadConfig: a.loadConfig})
			if err != nil {
				return err
			}
			ln, err := listenOn(listen)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), srv, ln, log, a)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8420", "HOST:PORT, or unix:/path for a Unix socket")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

// serve runs until ctx ends (SIGTERM, SIGINT), reloading on SIGHUP, then
// drains requests in flight.
func serve(ctx context.Context, srv *server.Server, ln net.Listener, log *slog.Logger, a *app) error {
	// Last, after the drain and the refresher (each return path waits for
	// them): renewals already sent are stored before the state closes.
	defer srv.Close()
	hs, ln := srv.HTTPServer(ln, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	// net/http's transport reports a vendor's stray bytes on the standard
	// logger, quoting them: they go to the log without the vendor's text.
	stdlog.SetFlags(0)
	stdlog.SetOutput(withoutVendorText{log})
	defer stdlog.SetOutput(os.Stderr)
	runCtx, stopRefresher := context.WithCancel(context.Background())
	refresherDone := make(chan struct{})
	go func() { srv.Run(runCtx); close(refresherDone) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			config.ForgetExecSecrets() // exec: secrets are read again with the config
			cfg, err := a.loadConfig()
			if err != nil {
				log.Error("reload failed, keeping the current configuration", "error", err)
				continue
			}
			srv.Reload(cfg)
		}
	}()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	// proxy_listen: one profile's (or tenant's) API at the root of its own
	// address, for SDKs that keep only a host.
	var roots []*http.Server
	for _, pl := range srv.ProxyListeners() {
		pln, err := net.Listen("tcp", pl.Addr)
		if err != nil {
			stopRefresher()
			<-refresherDone
			return failure.New(failure.Config, "%s: proxy_listen %s: %v", pl.Name, pl.Addr, err)
		}
		rhs, rln := srv.HTTPServerFor(pl.Handler, pln, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
		roots = append(roots, rhs)
		go rhs.Serve(rln)
		log.Info("serving a profile's API at the root", "profile", pl.Name, "listen", rln.Addr().String())
	}
	defer func() {
		for _, r := range roots {
			r.Close()
		}
	}()
	log.Info("serving", "listen", ln.Addr().String())
	select {
	case err := <-served:
		stopRefresher()
		<-refresherDone
		return err
	case <-ctx.Done():
	}
	log.Info("draining requests in flight", "timeout", drainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err := hs.Shutdown(dctx)
	stopRefresher()
	<-refresherDone
	log.Info("stopped")
	return err
}

// listenOn opens a TCP address, or a Unix socket that only this user may use.
func listenOn(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		os.Remove(path)
		ln, err := listenPrivateSocket(path)
		if err != nil {
			return nil, failure.New(failure.Config, "--listen %s: %v", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, failure.New(failure.Config, "--listen %s: %v", addr, err)
	}
	return ln, nil
}

// apiKey is $TOKENBROKER_API_KEY, else the api-key file beside the state,
// made on first start.
func apiKey(state string, log *slog.Logger) (string, error) {
	if k := os.Getenv("TOKENBROKER_API_KEY"); k != "" {
		return k, nil
	}
	kind, rest := store.Kind(state)
	if kind != "sqlite" {
		_, rest = store.Kind(config.DefaultState())
	}
	dir := filepath.Dir(rest)
	path := filepath.Join(dir, "api-key")
	key, created, err := secretfile.LoadOrCreate(path, "broker key file", func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	})
	if err != nil {
		return "", &failure.Error{Kind: failure.Config, Msg: "broker key", Err: err}
	}
	if created {
		log.Info("made a broker key; callers send it as `Authorization: Bearer <key>`", "file", path)
	} else {
		log.Info("broker key", "file", path)
	}
	return key, nil
}

// newLogger builds the slog logger of --log-level and --log-format.
func (a *app) newLogger(format string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", a.logLevel)}
	}
	o := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(a.stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, o)), nil
	}
	return nil, usageError{errors.New("--log-format: use text or json")}
}

// withoutVendorText writes the standard logger's lines to log, cut before
// any bytes a vendor sent ("... starting with ..."), which may echo a
// credential.
type withoutVendorText struct{ log *slog.Logger }

func (w withoutVendorText) Write(p []byte) (int, error) {
	msg, _, _ := strings.Cut(strings.TrimSpace(string(p)), " starting with ")
	w.log.Warn(msg)
	return len(p), nil
}
