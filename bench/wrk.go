package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// loadWrk runs the same load with wrk (when installed), the tool the
// project's performance aims were stated with.
func loadWrk(name, url string, headers map[string]string, d time.Duration, conns int) (result, bool) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return result{}, false
	}
	args := []string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	for k, v := range headers {
		args = append(args, "-H", k+": "+v)
	}
	out, err := exec.Command(bin, append(args, url)...).CombinedOutput()
	if err != nil {
		fmt.Printf("%-46s wrk failed: %v\n", name, err)
		return result{}, false
	}
	var r result
	if m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	r.p50 = wrkPercentile(out, "50%")
	r.p99 = wrkPercentile(out, "99%")
	errs := ""
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out); m != nil {
		errs = " non-2xx " + string(m[1])
		r.errors, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	fmt.Printf("%-56s %9.0f req/s   p50 %8s   p99 %8s   (wrk)%s\n", name, r.rps, r.p50, r.p99, errs)
	return r, true
}

func wrkPercentile(out []byte, pct string) time.Duration {
	m := regexp.MustCompile(regexp.QuoteMeta(pct) + `\s+([\d.]+)(us|ms|s)`).FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[2])]
	return time.Duration(v * float64(unit)).Round(time.Microsecond)
}
