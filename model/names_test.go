package model

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr string // substring; "" means valid
	}{
		{"proj1", ""},
		{"a", ""},
		{"p-2", ""},
		{"a-b-c0", ""},
		{strings.Repeat("a", 63), ""},
		{"", "empty"},
		{strings.Repeat("a", 64), "64 characters long"},
		{"1db", "starts with '1'"},
		{"-db", "starts with '-'"},
		{"db-", "ends with '-'"},
		{"Proj1", "contains 'P' at position 1"},
		{"proj_1", "contains '_' at position 5"},
		{"proj.1", "contains '.'"},
		{"pröj", "contains 'ö'"},
	} {
		checkErr(t, "ValidateName", tc.name, ValidateName(tc.name), tc.wantErr)
	}
}

func TestValidateNodeName(t *testing.T) {
	for _, tc := range []struct{ name, wantErr string }{
		{"host1", ""},
		{"rack2.host3", ""},
		{"1host", ""}, // hostnames may start with a digit
		{"", "empty"},
		{"Host1", "contains 'H'"},
		{"host..1", "empty part"},
		{"host-.1", "starts or ends with '-'"},
		{strings.Repeat("a", 64), "longer than 63"},
		{strings.Repeat("a.", 127) + "a", "more than 253"},
	} {
		checkErr(t, "ValidateNodeName", tc.name, ValidateNodeName(tc.name), tc.wantErr)
	}
}

func TestValidateLabelKey(t *testing.T) {
	for _, tc := range []struct{ key, wantErr string }{
		{"env", ""},
		{"Env", ""},
		{"app.kubernetes.io/name", ""},
		{"example.com/Team_1", ""},
		{"a", ""},
		{"a.b-c_d", ""},
		{strings.Repeat("k", 63), ""},
		{strings.Repeat("p", 63) + ".com/" + strings.Repeat("k", 63), ""},
		{"", "name part is empty"},
		{"/env", "prefix before '/' is empty"},
		{"example.com/", "name part is empty"},
		{"a/b/c", "at most one '/'"},
		{"Example.com/env", `prefix "Example.com" is not a DNS subdomain`},
		{"-env", "start and end with a letter or digit"},
		{"env-", "start and end with a letter or digit"},
		{"env key", "contains ' '"},
		{strings.Repeat("k", 64), "64 characters long"},
		{strings.Repeat("p", 254) + "/env", "more than 253"},
	} {
		checkErr(t, "ValidateLabelKey", tc.key, ValidateLabelKey(tc.key), tc.wantErr)
	}
}

func TestValidateLabelValue(t *testing.T) {
	for _, tc := range []struct{ value, wantErr string }{
		{"", ""},
		{"prod", ""},
		{"Prod_1.x-y", ""},
		{"9", ""},
		{strings.Repeat("v", 63), ""},
		{strings.Repeat("v", 64), "64 characters long"},
		{"-prod", "start and end"},
		{"prod.", "start and end"},
		{"a/b", "contains '/'"},
		{"pay ments", "contains ' ' at position 4"},
	} {
		checkErr(t, "ValidateLabelValue", tc.value, ValidateLabelValue(tc.value), tc.wantErr)
	}
}

func TestParseAddresses(t *testing.T) {
	for _, tc := range []struct {
		what, in, want, wantErr string
	}{
		{"prefix", "10.128.0.0/14", "10.128.0.0/14", ""},
		{"prefix", "10.128.0.1/14", "", `did you mean "10.128.0.0/14"`},
		{"prefix", "10.128.0.0", "", "add the prefix length"},
		{"prefix", "fd00::/64", "", "IPv6"},
		{"prefix", "10.128.0.0/33", "", "not a CIDR"},
		{"prefix", "", "", "empty"},
		{"ip", "10.128.0.10", "10.128.0.10", ""},
		{"ip", "10.128.0.10/23", "", "without the prefix length"},
		{"ip", "::ffff:10.0.0.1", "", "IPv6"},
		{"ip", "10.1", "", "not an IP address"},
		{"mac", "0A-58-0A-80-00-0A", "0a:58:0a:80:00:0a", ""},
		{"mac", "0a:58:0a:80:00", "", "not an Ethernet MAC"},
		{"mac", "00:00:5e:00:53:00:00:01", "", "not an Ethernet MAC"},
		{"mac", "01:00:5e:00:00:01", "", "multicast"},
		{"mac", "00:00:00:00:00:00", "", "all-zero"},
	} {
		var got string
		var err error
		switch tc.what {
		case "prefix":
			p, e := ParseIPv4Prefix("cidr", tc.in)
			got, err = p.String(), e
		case "ip":
			a, e := ParseIPv4("ip", tc.in)
			got, err = a.String(), e
		case "mac":
			got, err = ParseMAC("mac", tc.in)
		}
		checkErr(t, "parse "+tc.what, tc.in, err, tc.wantErr)
		if err == nil && got != tc.want {
			t.Errorf("parse %s %q = %q, want %q", tc.what, tc.in, got, tc.want)
		}
	}
}

func checkErr(t *testing.T, fn, in string, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%s(%q) = %v, want valid", fn, in, err)
	case wantErr != "" && err == nil:
		t.Errorf("%s(%q) is valid, want an error containing %q", fn, in, wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("%s(%q) = %v, want an error containing %q", fn, in, err, wantErr)
	}
}
