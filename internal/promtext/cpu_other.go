//go:build !unix

package promtext

// cpuSeconds is not read outside Unix: the series is left out.
func cpuSeconds() (float64, bool) { return 0, false }
