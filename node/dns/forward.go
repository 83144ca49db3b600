package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// reloadEvery is how often the resolv.conf file is looked at (its size and
// time of change; it is read again when they changed).
const reloadEvery = 2 * time.Second

// upstreams are the host's resolvers: fixed, or from a resolv.conf file.
type upstreams struct {
	path  string
	fixed []string
	self  func(addr string) bool

	mu      sync.Mutex
	list    []string
	err     error // why the file gave none
	checked time.Time
	mtime   time.Time
	size    int64
}

func newUpstreams(path string, fixed []string, self func(string) bool) *upstreams {
	return &upstreams{path: path, fixed: fixed, self: self}
}

// get returns the resolvers to ask, in order, less this server's own
// address; the error says why there are none.
func (u *upstreams) get(now time.Time) ([]string, error) {
	list, err := u.fixed, error(nil)
	if list == nil {
		list, err = u.fromFile(now)
	}
	list = slices.DeleteFunc(slices.Clone(list), u.self)
	if len(list) == 0 && err == nil {
		err = fmt.Errorf("%s lists no nameserver but this DNS server", u.path)
	}
	return list, err
}

// fromFile returns the nameservers of the resolv.conf file, read again
// when it changed.
func (u *upstreams) fromFile(now time.Time) ([]string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.checked) < reloadEvery && !u.checked.IsZero() {
		return u.list, u.err
	}
	u.checked = now
	fi, err := os.Stat(u.path)
	if err != nil {
		u.list, u.err = nil, fmt.Errorf("host resolvers: %w", err)
		return nil, u.err
	}
	if fi.ModTime().Equal(u.mtime) && fi.Size() == u.size && u.err == nil {
		return u.list, nil
	}
	u.mtime, u.size = fi.ModTime(), fi.Size()
	cc, err := mdns.ClientConfigFromFile(u.path)
	if err != nil {
		u.list, u.err = nil, fmt.Errorf("host resolvers: read %s: %w", u.path, err)
		return nil, u.err
	}
	u.list, u.err = nil, nil
	for _, s := range cc.Servers {
		u.list = append(u.list, net.JoinHostPort(s, cc.Port))
	}
	return u.list, nil
}

// forward asks the host's resolvers, in turn, and returns the first good
// answer (UDP, then TCP when it was truncated); a resolver's SERVFAIL or
// REFUSED sends the query on to the next. SERVFAIL when none answers.
func (s *Server) forward(r *mdns.Msg) *mdns.Msg {
	ups, err := s.up.get(s.now())
	var last *mdns.Msg
	for _, up := range ups {
		resp, xerr := s.exchange(r, up)
		if xerr != nil {
			err = errors.Join(err, xerr)
			continue
		}
		if resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			last = resp
			continue
		}
		return resp
	}
	if last != nil {
		return last
	}
	if s.cache.warnNow(s.now()) {
		s.log.Warn("DNS: no host resolver answered; answering SERVFAIL (logged once in 10 s)", "name", r.Question[0].Name, "resolvers", ups, "err", err)
	}
	return reply(r, mdns.RcodeServerFailure)
}

// exchange asks one resolver, over UDP and again over TCP when the answer
// is truncated.
func (s *Server) exchange(r *mdns.Msg, up string) (*mdns.Msg, error) {
	q := r.Copy()
	c := &mdns.Client{Net: "udp", Timeout: s.cfg.ForwardTimeout}
	resp, _, err := c.Exchange(q, up)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.Exchange(q, up)
	}
	if err != nil {
		return nil, fmt.Errorf("resolver %s: %w", up, err)
	}
	resp.Id = r.Id
	return resp, nil
}

// sameAddr reports whether two ip:port addresses are the same.
func sameAddr(a, b string) bool {
	x, errx := netip.ParseAddrPort(a)
	y, erry := netip.ParseAddrPort(b)
	return errx == nil && erry == nil && x.Addr().Unmap() == y.Addr().Unmap() && x.Port() == y.Port()
}
