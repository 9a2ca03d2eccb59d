package store

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

// NewOwner names a lease holder: host, process id and a random part, so
// that two brokers in one process are distinct.
func NewOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b)
}

// OwnerDead reports whether owner is provably gone: a process of this host
// that no longer exists. A lease of a dead owner need not be waited out.
// Anything uncertain (another host, a reused pid) counts as alive.
func OwnerDead(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if parts[0] != host || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return processGone(pid)
}
