package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/failure"
)

func (a *app) curlCommand() *cobra.Command {
	var method, data string
	var headers []string
	var include bool
	cmd := &cobra.Command{
		Use:   "curl PROFILE [-X M] [-H H] [-d DATA] PATH|URL",
		Short: "Call the vendor API with auth, rate limits and a 401 retry; the body goes to stdout",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			name, target := args[0], args[1]
			prof, _, err := b.Tenant(cmd.Context(), name)
			if err != nil {
				return err
			}
			p, err := b.Provider(prof.Name)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") {
				target = strings.TrimRight(p.Describe().APIBase, "/") + "/" + strings.TrimLeft(target, "/")
			}
			var body io.Reader
			if data != "" {
				raw, err := readData(data, a.stdin)
				if err != nil {
					return err
				}
				body = bytes.NewReader(raw)
				if method == "" {
					method = http.MethodPost
				}
			}
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequestWithContext(cmd.Context(), method, target, body)
			if err != nil {
				return usageError{err}
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return usageError{fmt.Errorf("-H %q: want \"Name: value\"", h)}
				}
				req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			if body != nil && req.Header.Get("Content-Type") == "" {
				req.Header.Set("Content-Type", "application/json")
			}
			hc, err := b.HTTPClient(name)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return failure.APIError(name, p.Describe().Vendor, req.URL, err)
			}
			defer resp.Body.Close()
			if include {
				fmt.Fprintf(a.stdout, "%s %s\r\n", resp.Proto, resp.Status)
				resp.Header.Write(a.stdout)
				fmt.Fprint(a.stdout, "\r\n")
			}
			if _, err := io.Copy(a.stdout, resp.Body); err != nil {
				return err
			}
			return statusError(name, req, resp)
		},
	}
	cmd.Flags().StringVarP(&method, "request", "X", "", "HTTP method (default GET, or POST with -d)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "extra header \"Name: value\" (repeatable); Authorization is always replaced")
	cmd.Flags().StringVarP(&data, "data", "d", "", "request body; @FILE reads a file, @- stdin")
	cmd.Flags().BoolVarP(&include, "include", "i", false, "print the status line and headers too")
	return cmd
}

func readData(data string, stdin io.Reader) ([]byte, error) {
	switch {
	case data == "@-":
		return io.ReadAll(stdin)
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, usageError{fmt.Errorf("-d %s: %v", data, err)}
		}
		return b, nil
	}
	return []byte(data), nil
}

// statusError maps an HTTP error status to DESIGN.md's exit codes.
func statusError(name string, req *http.Request, resp *http.Response) error {
	if resp.StatusCode < 400 {
		return nil
	}
	kind := failure.Other
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		kind = failure.Rejected
	case resp.StatusCode == http.StatusTooManyRequests:
		kind = failure.RateLimited
	case resp.StatusCode >= 500:
		kind = failure.Unreachable
	}
	return &failure.Error{Kind: kind, Profile: name, Endpoint: req.Method + " " + req.URL.Path, Msg: "the API answered " + resp.Status}
}
