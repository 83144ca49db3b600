package ovs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Flow is one OpenFlow flow in ovs-ofctl text.
type Flow struct {
	Table    uint8
	Priority uint16 // explicit: 0 means 0, not OVS's default 32768
	// Match in ovs-ofctl syntax without table, priority or cookie, e.g.
	// "ip,in_port=3,nw_src=10.128.0.2". Ports are numbers, not names.
	Match string
	// Actions in ovs-ofctl syntax, e.g. "load:0x5->NXM_NX_REG0[],resubmit(,10)".
	Actions string
	// Cookie as OVS holds it. In a desired flow only the category (low 32
	// bits) counts: Reconcile stamps our tag and the generation.
	Cookie uint64
}

// String renders the flow as ovs-ofctl add-flow accepts it.
func (f Flow) String() string {
	// Without fmt: a realize renders every desired flow (canonInput), and
	// at 12,000 flows fmt was most of a reconcile's own time.
	var b strings.Builder
	b.Grow(64 + len(f.Match) + len(f.Actions))
	var num [20]byte
	if f.Cookie != 0 {
		b.WriteString("cookie=0x")
		b.Write(strconv.AppendUint(num[:0], f.Cookie, 16))
		b.WriteByte(',')
	}
	b.WriteString("table=")
	b.Write(strconv.AppendUint(num[:0], uint64(f.Table), 10))
	b.WriteString(",priority=")
	b.Write(strconv.AppendUint(num[:0], uint64(f.Priority), 10))
	b.WriteByte(',')
	if f.Match != "" {
		b.WriteString(f.Match)
		b.WriteByte(',')
	}
	b.WriteString("actions=")
	b.WriteString(f.Actions)
	return b.String()
}

// flowKey identifies a flow in OVS: two flows with the same table, priority
// and (canonical) match are the same flow, and adding one replaces the other.
type flowKey struct {
	table    uint8
	priority uint16
	match    string
}

func (f Flow) key() flowKey { return flowKey{f.Table, f.Priority, f.Match} }

// Cookies: the high 16 bits are our application's tag, the next 16 the
// generation (bumped on every agent start), the low 32 a category the
// caller chooses (or 0).
const (
	// AppTag marks the flows this project owns.
	AppTag uint16 = 0x5d4e

	TagMask        uint64 = 0xffff << 48
	GenerationMask uint64 = 0xffff << 32
	CategoryMask   uint64 = 0xffffffff
)

// MakeCookie returns the cookie of a flow of ours.
func MakeCookie(gen uint16, category uint32) uint64 {
	return uint64(AppTag)<<48 | uint64(gen)<<32 | uint64(category)
}

// TagCookie is the cookie value that, under TagMask, selects all our flows.
func TagCookie() uint64 { return uint64(AppTag) << 48 }

// CookieTag, CookieGeneration and CookieCategory take a cookie apart.
func CookieTag(c uint64) uint16        { return uint16(c >> 48) }
func CookieGeneration(c uint64) uint16 { return uint16(c >> 32) }
func CookieCategory(c uint64) uint32   { return uint32(c) }

// DumpFlows returns the flows of bridge whose cookie matches cookieTag under
// tagMask (e.g. TagCookie(), TagMask: all generations of ours; 0, 0: all
// flows), in OVS's canonical text.
func (i *Instance) DumpFlows(ctx context.Context, bridge string, cookieTag, tagMask uint64) ([]Flow, error) {
	out, err := i.Ofctl(ctx, "-O", "OpenFlow15", "--no-names", "dump-flows", "--no-stats",
		i.mgmt(bridge), fmt.Sprintf("cookie=%#x/%#x", cookieTag, tagMask))
	if err != nil {
		return nil, fmt.Errorf("dump flows of bridge %q: %w", bridge, err)
	}
	return parseDump(out)
}

// parseDump parses `ovs-ofctl dump-flows --no-stats` output.
func parseDump(out string) ([]Flow, error) {
	var flows []Flow
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_FLOW") || strings.HasPrefix(line, "NXST_FLOW") {
			continue
		}
		f, err := parseDumpLine(line)
		if err != nil {
			return nil, err
		}
		flows = append(flows, f)
	}
	return flows, nil
}

// Flags ovs-ofctl may print before the match, as "flag " or "flag, ".
var dumpFlags = map[string]bool{
	"send_flow_rem": true, "check_overlap": true, "reset_counts": true,
	"no_packet_counts": true, "no_byte_counts": true,
}

// parseDumpLine parses one flow as dump-flows prints it:
//
//	cookie=0x5d4e000100000000, table=10, priority=200,tcp,reg0=0x5 actions=ct(commit,table=20)
//
// cookie, table and priority are omitted when 0, 0 and 32768; statistics
// and timeouts come as "key=value, " before the match, which holds no
// spaces.
func parseDumpLine(line string) (Flow, error) {
	f := Flow{Priority: 32768}
	var head string
	if strings.HasPrefix(line, "actions=") {
		f.Actions = strings.TrimPrefix(line, "actions=")
	} else {
		j := strings.Index(line, " actions=")
		if j < 0 {
			return Flow{}, fmt.Errorf("parse flow %q: no actions", line)
		}
		head, f.Actions = line[:j], line[j+len(" actions="):]
	}
	fields := strings.Fields(head)
	for k, field := range fields {
		last := k == len(fields)-1
		item, comma := strings.CutSuffix(field, ",")
		name, val, _ := strings.Cut(item, "=")
		switch {
		case comma || dumpFlags[item] || (!last && !strings.Contains(name, ",")):
			// "key=value," metadata, or a flag
			var err error
			switch name {
			case "cookie":
				f.Cookie, err = strconv.ParseUint(val, 0, 64)
			case "table":
				var t uint64
				t, err = strconv.ParseUint(val, 10, 8)
				f.Table = uint8(t)
			}
			if err != nil {
				return Flow{}, fmt.Errorf("parse flow %q: %s: %w", line, item, err)
			}
		default: // the match, possibly led by priority
			m := item
			if rest, ok := strings.CutPrefix(m, "priority="); ok {
				p, tail, _ := strings.Cut(rest, ",")
				n, err := strconv.ParseUint(p, 10, 16)
				if err != nil {
					return Flow{}, fmt.Errorf("parse flow %q: priority: %w", line, err)
				}
				f.Priority, m = uint16(n), tail
			}
			f.Match = m
		}
	}
	return f, nil
}
