package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/webhook"
)

func (a *app) webhookCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Aruba Central webhooks: list, token, rotate, ping, and send signed sample deliveries",
	}
	tokens := func() (*webhook.Tokens, error) {
		b, err := a.load()
		if err != nil {
			return nil, err
		}
		st, err := b.Store()
		if err != nil {
			return nil, err
		}
		q, ok := st.(store.Webhooks)
		if !ok {
			return nil, failure.New(failure.Config, "this state keeps no webhook tokens")
		}
		return &webhook.Tokens{Broker: a.brokerFn(), Store: q}, nil
	}
	api := func(use, short, method, path string) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				t, err := tokens()
				if err != nil {
					return err
				}
				p := path
				if strings.Contains(p, "{wid}") {
					if len(args) < 2 {
						return usageError{errors.New("give the webhook id: " + use)}
					}
					p = strings.ReplaceAll(p, "{wid}", args[1])
				}
				body, err := t.Raw(cmd.Context(), args[0], method, p)
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(append(body, '\n'))
				return err
			},
		}
	}
	token := &cobra.Command{
		Use: "token PROFILE WID", Short: "Print the webhook's signing token (fetched from Central and stored sealed on first use)",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := tokens()
			if err != nil {
				return err
			}
			prof, err := a.broker.Config().Profile(args[0])
			if err != nil {
				return err
			}
			wh := findWebhook(prof.Webhooks, args[1])
			toks, err := t.Verifying(cmd.Context(), args[0], wh, true)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, toks[0])
			return nil
		},
	}
	rotate := &cobra.Command{
		Use: "rotate PROFILE WID", Short: "Have Central make a new signing token; the old one verifies for 10 more minutes",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := tokens()
			if err != nil {
				return err
			}
			if _, err := t.Rotate(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: webhook %s token rotated; the previous one verifies for %s\n", args[0], args[1], webhook.DefaultGrace)
			return nil
		},
	}
	cmd.AddCommand(
		api("list PROFILE", "List the webhooks Central has for the profile", http.MethodGet, "/central/v1/webhooks"),
		token, rotate,
		api("ping PROFILE WID", "Ask Central to send a test delivery to the webhook's URLs", http.MethodGet, "/central/v1/webhooks/{wid}/ping"),
		a.webhookSendCommand(),
	)
	return cmd
}

// findWebhook is the configured webhook with id, or a bare one (its token
// then comes from the vendor).
func findWebhook(hooks []config.Webhook, id string) config.Webhook {
	for _, wh := range hooks {
		if wh.ID == id {
			return wh
		}
	}
	return config.Webhook{ID: id}
}

func (a *app) webhookSendCommand() *cobra.Command {
	var token, fault string
	var count int
	cmd := &cobra.Command{
		Use:   "send URL",
		Short: "Send signed sample alerts (AP, switch, gateway) to a receiver; --fault sends bad ones",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == "" {
				return usageError{errors.New("--token is required (the webhook's signing token)")}
			}
			f, err := emulator.ParseFault(fault)
			if err != nil {
				return usageError{err}
			}
			samples := emulator.SampleAlerts()
			hc := &http.Client{Timeout: 10 * time.Second}
			failed := 0
			for i := range count {
				d := emulator.NewDelivery(token, samples[i%len(samples)], time.Now()).With(f, time.Now())
				status, err := emulator.Send(cmd.Context(), hc, args[0], d)
				if err != nil {
					return &failure.Error{Kind: failure.Unreachable, Endpoint: args[0], Msg: "the receiver could not be reached", Err: err}
				}
				fmt.Fprintf(a.stdout, "%s %s %d\n", d.DeliveryID, f, status)
				if status/100 != 2 {
					failed++
				}
			}
			if failed > 0 && f.Acceptable() {
				return failure.New(failure.Other, "%d of %d deliveries were refused", failed, count)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "the webhook's signing token")
	cmd.Flags().IntVar(&count, "count", 1, "how many deliveries")
	cmd.Flags().StringVar(&fault, "fault", "none", "send bad deliveries: "+faultNames())
	return cmd
}

func faultNames() string {
	var names []string
	for _, f := range emulator.Faults() {
		names = append(names, f.String())
	}
	return strings.Join(names, ", ")
}
