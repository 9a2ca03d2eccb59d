package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tokenbroker/tokenbroker/provider"
)

func (a *app) loginCommand() *cobra.Command {
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "login PROFILE",
		Short: "Run an interactive grant (Aruba Central login + CSRF + auth code; oauth2 authorization code with PKCE, or device code) and store the token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			t, err := b.Login(cmd.Context(), args[0], &loginUI{Prompter: a.prompter(), noBrowser: noBrowser})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: logged in, token stored, %s\n", args[0], expiresIn(t))
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the authorization URL instead of opening a browser")
	return cmd
}

// loginUI is what `login` offers a flow: prompts at the terminal (when
// there is one) and a browser (unless --no-browser).
type loginUI struct {
	provider.Prompter // nil without a terminal
	noBrowser         bool
}

func (u *loginUI) Prompt(label string, secret bool) (string, error) {
	if u.Prompter == nil {
		return "", provider.ErrNoTerminal
	}
	return u.Prompter.Prompt(label, secret)
}

// OpenURL opens the system browser where there is a desktop to show it.
func (u *loginUI) OpenURL(url string) error {
	if u.noBrowser {
		return errors.New("--no-browser")
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("no desktop session")
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return err
	}
	return exec.Command(path, url).Start()
}

// terminalPrompter asks on the terminal: the label on stderr, the answer
// from stdin, without echo for secrets.
type terminalPrompter struct {
	in  *os.File
	out io.Writer
	rd  *bufio.Reader
}

// prompter returns a Prompter when stdin is a terminal, else nil: scripts
// must configure secrets rather than hang on a prompt.
func (a *app) prompter() provider.Prompter {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &terminalPrompter{in: f, out: a.stderr, rd: bufio.NewReader(f)}
}

func (p *terminalPrompter) Prompt(label string, secret bool) (string, error) {
	fmt.Fprintf(p.out, "%s: ", label)
	if secret {
		b, err := term.ReadPassword(int(p.in.Fd()))
		fmt.Fprintln(p.out)
		return string(b), err
	}
	line, err := p.rd.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
