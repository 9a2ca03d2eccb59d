//go:build !linux

package promtext

// residentBytes is not read outside Linux: the series is left out.
func residentBytes() (uint64, bool) { return 0, false }
