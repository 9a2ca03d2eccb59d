package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
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

// TestDashboardHoldsHundredsOfRows: 21 profiles, one in error with a long
// message, and an MSP with 500 tenants, at 1280 px. Every column stays on
// the screen, every badge has its word in a colour of its own, the tenants
// are grouped under their MSP (collapsed until asked), and the filter box
// and the state filter find a tenant or a state.
func TestDashboardHoldsHundredsOfRows(t *testing.T) {
	ctx := browser(t)
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	long := strings.Repeat("the identity provider could not complete the request because its upstream directory timed out; ", 4)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable", "error_description": long})
	}))
	t.Cleanup(broken.Close)
	var tenants []config.Tenant
	for i := range 500 {
		tenants = append(tenants, config.Tenant{ID: fmt.Sprintf("%032x", 0x7e000+i), Name: fmt.Sprintf("customer-%03d", i+1)})
	}
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"msp": {Provider: "aruba-central", BaseURL: set.URLs["aruba-central"], ClientID: config.Secret(set.Aruba.ClientID),
			ClientSecret: config.Secret(set.Aruba.ClientSecret), Tenants: config.Tenants{List: tenants}},
		"broken": {Provider: "oauth2", TokenURL: broken.URL + "/token", ClientID: "app", ClientSecret: "s3cret"},
	}}
	for i := range 19 {
		cfg.Profiles[fmt.Sprintf("site-%02d", i+1)] = &config.Profile{Provider: "static", APIKey: config.Secret(fmt.Sprintf("key-%02d", i))}
	}
	srv, err := serverFor(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	bctx := context.Background()
	if _, err := srv.Broker().Import(bctx, "msp", set.Aruba.IssueOfflineToken(), tokenbroker.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Broker().Token(bctx, "broken", tokenbroker.TokenOptions{}) // fails: the profile shows its error
	front := serveFront(t, srv)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eval := func(expr string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		must(err)
		return v
	}
	must(chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(front.URL), chromedp.WaitVisible("#key"),
		chromedp.SetValue("#key", testKey), chromedp.Submit("#login"),
		chromedp.WaitVisible(`tr[data-profile="broken"]`)))
	if n := eval(`document.querySelectorAll("#profiles tbody tr[data-profile]").length`); n != 21 {
		t.Errorf("%d profile rows, want 21", n)
	}
	if n := eval(`document.querySelectorAll("#profiles tr.tenant").length`); n != 0 {
		t.Errorf("%d tenant rows before the MSP is opened, want 0 (collapsed)", n)
	}
	// Nothing runs off the screen: the table fits the section, which fits
	// the window, and no cell sticks out.
	fits := `(() => {
		const w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > w + 1) return 1;
		const sc = document.querySelector("#profiles").parentElement;
		if (sc.scrollWidth > sc.clientWidth + 1) return 2;
		for (const c of document.querySelectorAll("#profiles th, #profiles td")) if (c.getBoundingClientRect().right > w + 1) return 3;
		return 0; })()`
	if why := eval(fits); why != 0 {
		t.Errorf("the profiles table does not fit 1280 px (check %d)", why)
	}
	// Every badge says its state, in a colour that is not its background.
	badges := `[...document.querySelectorAll("#profiles .state")].filter(b => !b.textContent.trim() || getComputedStyle(b).color === getComputedStyle(b).backgroundColor).length`
	if n := eval(badges); n != 0 {
		t.Errorf("%d badges without a readable word", n)
	}
	if s, err := chromedp.Run(ctx, chromedp.Text(`tr[data-profile="broken"] .state`)); err != nil || strings.TrimSpace(s) != "error" {
		t.Errorf("the broken profile's badge: %q %v", s, err)
	}
	// The long error is cut to two lines, and whole on demand.
	clipped := `(() => { const s = document.querySelector('tr[data-profile="broken"] details summary'); return s ? Math.round(s.getBoundingClientRect().height) : -1; })()`
	if h := eval(clipped); h < 0 || h > 60 {
		t.Errorf("the long error takes %d px before it is opened, want two lines", h)
	}
	must(chromedp.Do(ctx, chromedp.Click(`tr[data-profile="broken"] details summary`)))
	if h := eval(clipped); h <= 60 {
		t.Errorf("the long error opened is %d px high: not the whole text", h)
	}

	// Open the MSP: its 500 tenants, still within the screen.
	must(chromedp.Do(ctx, chromedp.Click(`tr[data-profile="msp"] button.toggle`)))
	if n := eval(`document.querySelectorAll("#profiles tr.tenant").length`); n != 500 {
		t.Errorf("%d tenant rows once opened, want 500", n)
	}
	if why := eval(fits); why != 0 {
		t.Errorf("with 500 tenants the table does not fit 1280 px (check %d)", why)
	}
	opened, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	must(err)
	must(os.WriteFile(filepath.Join(artifacts(t), "dashboard-msp-open.png"), opened, 0o644))
	must(chromedp.Do(ctx, chromedp.Click(`tr[data-profile="msp"] button.toggle`)))

	// The filter finds one tenant, by name, collapsed MSP or not.
	must(chromedp.Do(ctx, chromedp.SendKeys("#filter", "customer-042")))
	if n, m := eval(`document.querySelectorAll("#profiles tr.tenant").length`), eval(`document.querySelectorAll("#profiles tr[data-profile]").length`); n != 1 || m != 1 {
		t.Errorf("filter customer-042: %d tenant rows under %d profiles, want 1 under 1", n, m)
	}
	eval(`(() => { const f = document.querySelector("#filter"); f.value = ""; f.dispatchEvent(new Event("input"));
		const s = document.querySelector("#state-filter"); s.value = "error"; s.dispatchEvent(new Event("change")); return 0; })()`)
	if n := eval(`document.querySelectorAll("#profiles tr[data-profile]").length`); n != 1 {
		t.Errorf("state filter error: %d rows, want 1", n)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	must(err)
	must(os.WriteFile(filepath.Join(artifacts(t), "dashboard-500-tenants.png"), shot, 0o644))
}
