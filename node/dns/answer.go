package dns

import (
	"context"
	"net"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// ServeDNS answers one query (mdns.Handler). An answer over UDP that does
// not fit the client's buffer is truncated (TC), and the client asks again
// over TCP.
func (s *Server) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	resp := s.answer(r)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := mdns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

// answer decides the response to a query.
func (s *Server) answer(r *mdns.Msg) *mdns.Msg {
	if r.Opcode != mdns.OpcodeQuery {
		return reply(r, mdns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return reply(r, mdns.RcodeFormatError)
	}
	q := r.Question[0]
	var l local
	s.cfg.Desired.View(func(m *model.Desired) { l = lookLocal(m, q) })
	switch {
	case !l.inside:
		return s.forward(r)
	case l.network != "":
		return s.answerWorkload(r, l)
	}
	return l.msg(r)
}

// local is what the desired state says of a query: outside the domain, an
// answer (an rcode and records), or a workload name to ask the servers.
type local struct {
	domain  string // the cluster's, lowercase, fully qualified
	inside  bool
	rcode   int
	answer  []mdns.RR
	extra   []mdns.RR
	network string // a workload to ask the servers about, with name
	name    string
}

// msg is the authoritative response for l.
func (l local) msg(r *mdns.Msg) *mdns.Msg {
	m := reply(r, l.rcode)
	m.Authoritative = true
	m.Answer, m.Extra = l.answer, l.extra
	if len(m.Answer) == 0 {
		// Negative answers carry the domain's SOA, so resolvers cache them
		// for TTL (RFC 2308).
		m.Ns = []mdns.RR{soa(l.domain)}
	}
	return m
}

// lookLocal looks q up in the desired state (see the package comment for
// the names).
func lookLocal(m *model.Desired, q mdns.Question) local {
	l := local{domain: mdns.Fqdn(strings.ToLower(model.DNSDomain(m.Cluster)))}
	name := strings.ToLower(q.Name)
	if name == l.domain {
		l.inside = true
		return l
	}
	rel, ok := strings.CutSuffix(name, "."+l.domain)
	if !ok {
		return l
	}
	l.inside, l.rcode = true, mdns.RcodeNameError
	labels := strings.Split(rel, ".")
	network := labels[len(labels)-1]
	if _, ok := m.Networks[network]; !ok {
		return l
	}
	switch len(labels) {
	case 1: // NETWORK: exists, holds names.
		l.rcode = mdns.RcodeSuccess
	case 2: // SERVICE or workload NAME.
		if svc, ok := m.Services[model.WorkloadKey(network, labels[0])]; ok {
			l.rcode = mdns.RcodeSuccess
			l.answer = addressRR(q, name, svc.GetVip())
		} else {
			l.network, l.name = network, labels[0]
		}
	case 3, 4: // _PROTO.SERVICE, _PORT._PROTO.SERVICE.
		l.lookPort(m.Services[model.WorkloadKey(network, labels[len(labels)-2])], q, name, labels)
	}
	return l
}

// lookPort answers _PORT._PROTO.SERVICE (SRV) and _PROTO.SERVICE (a name
// that exists when the service has a named port of that protocol).
func (l *local) lookPort(svc *sdnv1.Service, q mdns.Question, name string, labels []string) {
	if svc == nil || !strings.HasPrefix(labels[0], "_") || (len(labels) == 4 && !strings.HasPrefix(labels[1], "_")) {
		return
	}
	proto := strings.TrimPrefix(labels[len(labels)-3], "_")
	portName := ""
	if len(labels) == 4 {
		portName = strings.TrimPrefix(labels[0], "_")
	}
	target := strings.Join(labels[len(labels)-2:], ".") + "." + l.domain
	for _, p := range svc.GetPorts() {
		if p.GetName() == "" || p.GetProtocol() != proto || (portName != "" && p.GetName() != portName) {
			continue
		}
		l.rcode = mdns.RcodeSuccess
		if portName != "" && q.Qtype == mdns.TypeSRV {
			l.answer = []mdns.RR{&mdns.SRV{Hdr: header(name, mdns.TypeSRV), Weight: 100, Port: uint16(p.GetPort()), Target: target}}
			l.extra = addressRR(mdns.Question{Qtype: mdns.TypeA}, target, svc.GetVip())
		}
		return
	}
}

// answerWorkload answers a workload name from the servers (cached).
func (s *Server) answerWorkload(r *mdns.Msg, l local) *mdns.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LookupTimeout)
	defer cancel()
	res, err := s.resolve(ctx, l.network, l.name)
	if err != nil {
		return reply(r, mdns.RcodeServerFailure)
	}
	if res.GetFound() {
		l.rcode = mdns.RcodeSuccess
		l.answer = addressRR(r.Question[0], strings.ToLower(r.Question[0].Name), res.GetIp())
	}
	return l.msg(r)
}

// addressRR is the A record of name for a query of type A; none for other
// types or without an IPv4 address.
func addressRR(q mdns.Question, name, ip string) []mdns.RR {
	a := net.ParseIP(ip).To4()
	if q.Qtype != mdns.TypeA || a == nil {
		return nil
	}
	return []mdns.RR{&mdns.A{Hdr: header(name, mdns.TypeA), A: a}}
}

func header(name string, typ uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: typ, Class: mdns.ClassINET, Ttl: uint32(TTL.Seconds())}
}

// soa is the domain's start of authority, for negative answers.
func soa(domain string) mdns.RR {
	ttl := uint32(TTL.Seconds())
	return &mdns.SOA{Hdr: header(domain, mdns.TypeSOA), Ns: "ns." + domain, Mbox: "hostmaster." + domain,
		Serial: 1, Refresh: ttl, Retry: ttl, Expire: ttl, Minttl: ttl}
}

// reply is an empty response to r with rcode.
func reply(r *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	return m
}
