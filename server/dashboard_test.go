package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's Chromium; without it the browser tests skip,
// except under CI=true, where they fail.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI (apt-get install chromium)")
	}
	t.Skip("no Chromium (apt-get install chromium)")
	return ""
}

// browser starts headless Chromium with the flags this machine needs.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		// A headless tab counts as hidden: without these its timers (the
		// countdown) slow to once a minute.
		chromedp.Flag("disable-background-timer-throttling", true), chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// artifacts is where browser tests leave screenshots: $TOKENBROKER_ARTIFACTS,
// else artifacts/ at the top of the module.
func artifacts(t *testing.T) string {
	dir := os.Getenv("TOKENBROKER_ARTIFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDashboardInABrowser(t *testing.T) {
	ctx := browser(t)
	r := newRig(t, time.Second)
	// Some traffic and history to show.
	for range 3 {
		r.get(t, "/proxy/aruba/monitoring/v1/aps", testKey)
	}
	r.get(t, "/v1/profiles/ruckus/token", testKey)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		must(err)
		return strings.TrimSpace(v)
	}
	eval := func(expr string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		must(err)
		return v
	}
	const ticks = `document.querySelectorAll('#timeline line[stroke="#146c2e"]').length`

	// A wrong key is refused.
	must(chromedp.Do(ctx,
		chromedp.Navigate(r.api.URL),
		chromedp.WaitVisible("#key"),
		chromedp.SendKeys("#key", "not-the-key"),
		chromedp.Submit("#login"),
		chromedp.WaitVisible("#login-error"),
	))
	// The right key shows every profile with its state.
	must(chromedp.Do(ctx,
		chromedp.SetValue("#key", testKey),
		chromedp.Submit("#login"),
		chromedp.WaitVisible(`tr[data-profile="ruckus"]`),
	))
	if a, rk := text(`tr[data-profile="aruba"] .state`), text(`tr[data-profile="ruckus"] .state`); a != "valid" || rk != "valid" {
		t.Errorf("states aruba %q ruckus %q, want valid", a, rk)
	}
	countdown1, ticksBefore := text(`tr[data-profile="ruckus"] td.countdown`), eval(ticks)

	// A forced refresh: the timeline gains a renewal, the countdown moves.
	must(chromedp.Do(ctx, chromedp.Click(`button[aria-label="Refresh ruckus"]`)))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](ticks+` > `+strconv.Itoa(ticksBefore), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the timeline did not show the refresh: %v", err)
	}
	// The countdown ticks on the page: read it twice, 2 s apart, in the page.
	moved, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`new Promise(done => {
		const cell = () => document.querySelector('tr[data-profile="ruckus"] td.countdown').textContent;
		const first = cell();
		setTimeout(() => done([first, cell()]), 2100);
	})`, chromedp.EvalAwaitPromise))
	if err != nil || len(moved) != 2 || moved[0] == moved[1] || !strings.Contains(moved[1], "h") {
		t.Errorf("countdown %q (before the refresh), then %q: want it moving (%v)", countdown1, moved, err)
	}

	// Revoke, confirmed in the dialog: the profile then needs a login.
	must(chromedp.Do(ctx,
		chromedp.Click(`button[aria-label="Revoke aruba"]`),
		chromedp.WaitVisible("#confirm"),
		chromedp.Click(`#confirm button[value="ok"]`),
	))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('tr[data-profile="aruba"] .state').textContent === "needs login"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("after revoke: %v (%q)", err, text(`tr[data-profile="aruba"] .state`))
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must(err)
	must(os.WriteFile(filepath.Join(artifacts(t), "dashboard.png"), shot, 0o644))

	// On a phone-sized screen the page still lays out (the tables scroll
	// sideways inside their sections, the page itself does not).
	must(chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Sleep(300*time.Millisecond)))
	if wide := eval(`document.documentElement.scrollWidth - document.documentElement.clientWidth`); wide > 2 {
		t.Errorf("on a phone the page is %d px wider than the screen", wide)
	}
	phone, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must(err)
	must(os.WriteFile(filepath.Join(artifacts(t), "dashboard-phone.png"), phone, 0o644))
	must(chromedp.Do(ctx, chromedp.EmulateReset()))

	// An action without the CSRF token is refused, session or not.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/ui/profiles/ruckus/refresh", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Errorf("an action without the CSRF token: %d %v, want 403", status, err)
	}
}
