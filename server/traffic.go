package server

import (
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// traffic keeps, per profile, proxied requests per minute over the last
// hour and the daily quota left as last seen, for the dashboard's charts.
type traffic struct {
	mu   sync.Mutex
	rows map[string]*series
}

const minutes = 60

type series struct {
	start  int64 // unix minute of counts[0]
	counts [minutes]int
	quota  [minutes]int // -1: unknown
}

func newTraffic() *traffic { return &traffic{rows: map[string]*series{}} }

// add counts one proxied request of profile at now, with the quota left.
func (t *traffic) add(profile string, now time.Time, quotaLeft int, quotaKnown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.rows[profile]
	m := now.Unix() / 60
	if s == nil {
		s = &series{start: m - minutes + 1}
		for i := range s.quota {
			s.quota[i] = -1
		}
		t.rows[profile] = s
	}
	s.advance(m)
	s.counts[minutes-1]++
	if quotaKnown {
		s.quota[minutes-1] = quotaLeft
	}
}

// advance moves the window so that its last minute is m.
func (s *series) advance(m int64) {
	shift := m - (s.start + minutes - 1)
	if shift <= 0 {
		return
	}
	if shift >= minutes {
		s.counts = [minutes]int{}
		for i := range s.quota {
			s.quota[i] = -1
		}
	} else {
		copy(s.counts[:], s.counts[shift:])
		copy(s.quota[:], s.quota[shift:])
		for i := minutes - int(shift); i < minutes; i++ {
			s.counts[i], s.quota[i] = 0, -1
		}
	}
	s.start += shift
}

// snapshot returns requests per second per minute and quota left per minute
// (-1 unknown), oldest first, for the hour ending at now.
func (t *traffic) snapshot(profile string, now time.Time) (perSecond []float64, quota []int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	perSecond, quota = make([]float64, minutes), make([]int, minutes)
	for i := range quota {
		quota[i] = -1
	}
	s := t.rows[profile]
	if s == nil {
		return
	}
	s.advance(now.Unix() / 60)
	for i := range minutes {
		perSecond[i] = float64(s.counts[i]) / 60
		quota[i] = s.quota[i]
	}
	return
}

// tenantCalls counts proxied calls per MSP tenant, with the last one's
// time, for GET /v1/profiles/{p}/tenants.
type tenantCalls struct {
	mu      sync.Mutex
	m       map[[2]string]*tenantCount // {profile, tenant id}, since serve started
	pending map[[2]string]*tenantCount // not yet added to the state (flush)
}

type tenantCount struct {
	n    int64
	last time.Time
}

func (c *tenantCalls) add(profile, id string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[2]string]*tenantCount{}
	}
	k := [2]string{profile, id}
	tc := c.m[k]
	if tc == nil {
		tc = &tenantCount{}
		c.m[k] = tc
	}
	tc.n++
	tc.last = now
	if c.pending == nil {
		c.pending = map[[2]string]*tenantCount{}
	}
	p := c.pending[k]
	if p == nil {
		p = &tenantCount{}
		c.pending[k] = p
	}
	p.n++
	p.last = now
}

// take hands over the counts not yet flushed, by profile.
func (c *tenantCalls) take() map[string]map[string]store.TenantCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[string]store.TenantCall{}
	for k, tc := range c.pending {
		if out[k[0]] == nil {
			out[k[0]] = map[string]store.TenantCall{}
		}
		out[k[0]][k[1]] = store.TenantCall{Calls: tc.n, Last: tc.last}
	}
	c.pending = nil
	return out
}

func (c *tenantCalls) get(profile, id string) (int64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc := c.m[[2]string{profile, id}]; tc != nil {
		return tc.n, tc.last
	}
	return 0, time.Time{}
}
