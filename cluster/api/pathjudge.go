package api

import (
	"fmt"
	"slices"
	"strings"

	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// judge sets a trace's outcome from its hosts, and the disagreement with
// the model in words. The datapath allowed the packet when the last host
// it crossed delivered it ("allowed"); a host that could not be asked, or
// a trace that ends neither allowed nor denied, leaves the outcome unknown:
// allowed is false and the unknown host's error says why.
func judge(out *sdnv1.TraceResponse) {
	last := out.Hosts[len(out.Hosts)-1]
	for _, h := range out.Hosts {
		if h.Error != "" || (h.Outcome != "allowed" && h.Outcome != "denied" && h.Outcome != "forwarded") {
			out.Allowed = false
			return // unknown: never compared, never guessed
		}
	}
	if last.Outcome == "forwarded" {
		// The source sent it on, but the host it went to was not asked
		// (the destination is no workload on a host we know).
		out.Allowed = true
	} else {
		out.Allowed = last.Outcome == "allowed"
	}
	m := out.Model
	switch {
	case m.Allowed && !out.Allowed:
		out.Disagreement = fmt.Sprintf("the model allows this (%s) but %s's datapath dropped it%s", modelReason(m), last.Node, where(last))
	case !m.Allowed && out.Allowed:
		out.Disagreement = fmt.Sprintf("the model denies this (%s) but the datapath let it through (%s delivered it)", modelReason(m), last.Node)
	case !m.Allowed:
		out.Disagreement = denialDiffers(m, last)
	}
}

// denialDiffers compares where and by what both deny: the same direction,
// and the same policy when the datapath names one.
func denialDiffers(m *sdnv1.VerdictResponse, last *sdnv1.HostTrace) string {
	d := deciding(m)
	step := lastStep(last)
	if d == nil || step == nil {
		return ""
	}
	if dir := stageDirection(step.Stage); dir != "" && dir != d.Direction {
		return fmt.Sprintf("both deny, but the model denies it at %s (%s) and %s's datapath dropped it%s", d.Direction, d.Reason, last.Node, where(last))
	}
	if step.Policy != "" && d.Policy != "" && step.Policy != d.Policy {
		return fmt.Sprintf("both deny, but by different policies: the model by %s, %s's datapath by %s", d.Policy, last.Node, step.Policy)
	}
	return ""
}

// deciding is the model's decision that denied (the egress one first), or
// nil when the model allows.
func deciding(m *sdnv1.VerdictResponse) *sdnv1.Decision {
	switch {
	case m.GetEgress() != nil && !m.Egress.Allowed:
		return m.Egress
	case m.GetIngress() != nil && !m.Ingress.Allowed:
		return m.Ingress
	}
	return nil
}

// modelReason names what decided the model's verdict: the denying
// decision, or for an allowed packet the decisions a policy made (else the
// ingress one, the baseline's).
func modelReason(m *sdnv1.VerdictResponse) string {
	if d := deciding(m); d != nil {
		return decisionWords(d)
	}
	var parts []string
	for _, d := range []*sdnv1.Decision{m.GetEgress(), m.GetIngress()} {
		if d != nil && (d.By == "policy" || d.By == "cluster-policy") {
			parts = append(parts, decisionWords(d))
		}
	}
	if len(parts) == 0 && m.GetIngress() != nil {
		parts = append(parts, decisionWords(m.Ingress))
	}
	return strings.Join(parts, "; ")
}

// decisionWords is one decision, short: "policy proj1/web rule clients".
func decisionWords(d *sdnv1.Decision) string {
	switch d.By {
	case "policy":
		return fmt.Sprintf("policy %s rule %s", d.Policy, d.Rule)
	case "cluster-policy":
		return fmt.Sprintf("cluster-wide policy %s rule %s", d.Policy, d.Rule)
	case "isolation":
		return fmt.Sprintf("%s isolated by policy %s", d.Direction, d.Policy)
	}
	return d.Reason
}

func lastStep(h *sdnv1.HostTrace) *sdnv1.TraceStep {
	if len(h.Steps) == 0 {
		return nil
	}
	return h.Steps[len(h.Steps)-1]
}

// where is " in STAGE" for a host's last step.
func where(h *sdnv1.HostTrace) string {
	if s := lastStep(h); s != nil {
		return " in " + s.Stage
	}
	return ""
}

// stageDirection maps a datapath stage to the policy direction it
// enforces ("egress-policy" → egress), "" for others.
func stageDirection(stage string) string {
	switch {
	case strings.HasPrefix(stage, "egress"):
		return "egress"
	case strings.HasPrefix(stage, "ingress"):
		return "ingress"
	}
	return ""
}

// judgeService judges a trace to a service. With an endpoint chosen that
// the model knows, it is judged as a packet sent to that endpoint (the
// model is then that endpoint's verdict). Otherwise the datapath must
// agree with the model's service outcome: refused by the host when no
// endpoint serves the port, dropped by the client's egress when the model
// says so; an endpoint the model does not know, or none chosen while the
// model has some, is a disagreement.
func judgeService(out *sdnv1.TraceResponse, sv *sdnv1.ServiceVerdict) {
	if out.Endpoint != "" {
		judge(out)
		return
	}
	for _, h := range out.Hosts {
		if h.Error != "" || !slices.Contains([]string{"allowed", "denied", "forwarded", "refused"}, h.Outcome) {
			out.Allowed = false
			return // unknown: never compared, never guessed
		}
	}
	last := out.Hosts[len(out.Hosts)-1]
	out.Allowed = last.Outcome == "allowed" || last.Outcome == "forwarded"
	svc := sv.Service
	if svc == "" {
		svc = "the service CIDR"
	}
	switch {
	case out.EndpointIp != "":
		out.Disagreement = fmt.Sprintf("%s's datapath chose endpoint %s:%d, which is no endpoint of %s serving this port in the model", last.Node, out.EndpointIp, out.EndpointPort, svc)
	case len(sv.Endpoints) > 0:
		out.Disagreement = fmt.Sprintf("the model has %d endpoint(s) of %s serving this port, but %s's datapath chose none: it %s", len(sv.Endpoints), svc, last.Node, didWords(last))
	case sv.Outcome == "refused" && last.Outcome != "refused":
		out.Disagreement = fmt.Sprintf("the model says the host refuses it (%s) but %s's datapath %s", sv.Reason, last.Node, didWords(last))
	case sv.Outcome != "refused" && last.Outcome != "denied":
		out.Disagreement = fmt.Sprintf("the model denies it (%s) but %s's datapath %s", sv.Reason, last.Node, didWords(last))
	case sv.Outcome != "refused":
		out.Disagreement = denialDiffers(out.Model, last)
	}
}

// didWords says what a host's datapath did with the packet.
func didWords(h *sdnv1.HostTrace) string {
	switch h.Outcome {
	case "refused":
		return "sent it into the host, which refuses it"
	case "denied":
		return "dropped it" + where(h)
	case "forwarded":
		return "sent it on over the tunnel"
	}
	return "delivered it"
}
