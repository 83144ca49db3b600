package model

import (
	"errors"
	"fmt"
	"strings"
)

// ValidateName checks a network or workload name: a DNS label of 1-63
// lowercase letters, digits and '-', starting with a letter and ending with a
// letter or digit. The error says which rule failed.
func ValidateName(s string) error {
	switch {
	case s == "":
		return errors.New("it is empty")
	case len(s) > 63:
		return fmt.Errorf("it is %d characters long, more than 63", len(s))
	}
	for i, r := range s {
		if !isLower(r) && !isDigit(r) && r != '-' {
			return fmt.Errorf("it contains %q at position %d; only lowercase letters, digits and '-' are allowed", r, i+1)
		}
	}
	if !isLower(rune(s[0])) {
		return fmt.Errorf("it starts with %q, not a lowercase letter", s[0])
	}
	if s[len(s)-1] == '-' {
		return errors.New("it ends with '-', not a letter or digit")
	}
	return nil
}

// ValidateNodeName checks a host name as a DNS subdomain: at most 253
// characters, dot-separated DNS labels of lowercase letters, digits and '-'
// that start and end with a letter or digit (e.g. "host1", "rack2.dc1").
func ValidateNodeName(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("it is %d characters long, more than 253", len(s))
	}
	return validateSubdomain(s)
}

// ValidateLabelKey checks a label key as Kubernetes does: an optional prefix
// that is a DNS subdomain followed by '/', then a name of at most 63
// characters from [A-Za-z0-9._-] that starts and ends with a letter or digit.
func ValidateLabelKey(k string) error {
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if strings.Contains(name, "/") {
			return errors.New("a key has at most one '/', between the prefix and the name")
		}
		if prefix == "" {
			return errors.New("the prefix before '/' is empty")
		}
		if len(prefix) > 253 {
			return fmt.Errorf("the prefix is %d characters long, more than 253", len(prefix))
		}
		if err := validateSubdomain(prefix); err != nil {
			return fmt.Errorf("the prefix %s is not a DNS subdomain: %v", Quote(prefix), err)
		}
	}
	if name == "" {
		return errors.New("the name part is empty")
	}
	if err := validateLabelName(name); err != nil {
		return fmt.Errorf("the name part %v", err)
	}
	return nil
}

// ValidateLabelValue checks a label value as Kubernetes does: empty, or at
// most 63 characters from [A-Za-z0-9._-] starting and ending with a letter
// or digit.
func ValidateLabelValue(v string) error {
	if v == "" {
		return nil
	}
	if err := validateLabelName(v); err != nil {
		return fmt.Errorf("it %v", err)
	}
	return nil
}

// validateLabelName checks the shared syntax of label names and values; its
// error reads after "it" or "the name part".
func validateLabelName(s string) error {
	if len(s) > 63 {
		return fmt.Errorf("is %d characters long, more than 63", len(s))
	}
	for i, r := range s {
		if !isAlnum(r) && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("contains %q at position %d; only letters, digits, '-', '_' and '.' are allowed", r, i+1)
		}
	}
	if !isAlnum(rune(s[0])) || !isAlnum(rune(s[len(s)-1])) {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}

func validateSubdomain(s string) error {
	if s == "" {
		return errors.New("it is empty")
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return errors.New("it has an empty part between dots")
		}
		if len(part) > 63 {
			return fmt.Errorf("its part %s is longer than 63 characters", Quote(part))
		}
		for i, r := range part {
			if !isLower(r) && !isDigit(r) && r != '-' {
				return fmt.Errorf("it contains %q in part %s at position %d; only lowercase letters, digits, '-' and '.' are allowed", r, Quote(part), i+1)
			}
		}
		if part[0] == '-' || part[len(part)-1] == '-' {
			return fmt.Errorf("its part %s starts or ends with '-'", Quote(part))
		}
	}
	return nil
}

func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isAlnum(r rune) bool { return isLower(r) || isDigit(r) || (r >= 'A' && r <= 'Z') }
