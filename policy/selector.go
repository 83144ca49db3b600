package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sdn-dev/sdn/model"
	sdnv1 "github.com/sdn-dev/sdn/proto/sdn/v1"
)

// Label selector operators, as Kubernetes spells them.
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
)

// Matches reports whether labels satisfy s: every match_labels pair and
// every requirement (AND). A nil selector matches nothing; an empty one
// matches everything.
func Matches(s *sdnv1.LabelSelector, labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		if !requirementHolds(r, labels) {
			return false
		}
	}
	return true
}

func requirementHolds(r *sdnv1.LabelRequirement, labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case OpIn:
		return ok && slices.Contains(r.Values, v)
	case OpNotIn:
		// As in Kubernetes: a missing key satisfies NotIn.
		return !ok || !slices.Contains(r.Values, v)
	case OpExists:
		return ok
	case OpDoesNotExist:
		return !ok
	}
	return false
}

// CheckSelector validates a selector; attr names it in messages.
func CheckSelector(attr string, s *sdnv1.LabelSelector) error {
	if s == nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
		if err := model.ValidateLabelKey(k); err != nil {
			return fmt.Errorf("%s: label key %s is invalid: %v", attr, model.Quote(k), err)
		}
		if err := model.ValidateLabelValue(s.MatchLabels[k]); err != nil {
			return fmt.Errorf("%s: the value of %s is invalid: %v", attr, model.Quote(k), err)
		}
	}
	for i, r := range s.MatchExpressions {
		if err := checkRequirement(r); err != nil {
			return fmt.Errorf("%s: expression %d: %v", attr, i+1, err)
		}
	}
	return nil
}

func checkRequirement(r *sdnv1.LabelRequirement) error {
	if err := model.ValidateLabelKey(r.Key); err != nil {
		return fmt.Errorf("key %s is invalid: %v", model.Quote(r.Key), err)
	}
	switch r.Operator {
	case OpIn, OpNotIn:
		if len(r.Values) == 0 {
			return fmt.Errorf("operator %s needs at least one value", r.Operator)
		}
		for _, v := range r.Values {
			if err := model.ValidateLabelValue(v); err != nil {
				return fmt.Errorf("value %s is invalid: %v", model.Quote(v), err)
			}
		}
	case OpExists, OpDoesNotExist:
		if len(r.Values) > 0 {
			return fmt.Errorf("operator %s takes no values", r.Operator)
		}
	default:
		return fmt.Errorf("operator %s is not one of In, NotIn, Exists, DoesNotExist", model.Quote(r.Operator))
	}
	return nil
}

// SelectorString renders a selector canonically, as kubectl writes them:
// "app=web,tier in (a,b),!legacy,debug". Keys and values are sorted, so
// equal selectors render equally (the address groups are keyed on it). A
// nil selector renders as "" and an empty one as "{}" (everything).
func SelectorString(s *sdnv1.LabelSelector) string {
	if s == nil {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
		parts = append(parts, k+"="+s.MatchLabels[k])
	}
	var exprs []string
	for _, r := range s.MatchExpressions {
		vals := slices.Clone(r.Values)
		slices.Sort(vals)
		vals = slices.Compact(vals)
		switch r.Operator {
		case OpIn:
			exprs = append(exprs, r.Key+" in ("+strings.Join(vals, ",")+")")
		case OpNotIn:
			exprs = append(exprs, r.Key+" notin ("+strings.Join(vals, ",")+")")
		case OpExists:
			exprs = append(exprs, r.Key)
		case OpDoesNotExist:
			exprs = append(exprs, "!"+r.Key)
		}
	}
	slices.Sort(exprs)
	parts = append(parts, slices.Compact(exprs)...)
	if len(parts) == 0 {
		return "{}"
	}
	return strings.Join(parts, ",")
}
