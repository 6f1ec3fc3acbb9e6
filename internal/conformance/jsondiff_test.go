package conformance

import (
	"fmt"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	cases := []struct {
		a, b string
		want []string // Difference.String() of each, in order
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b" : [1,2], "a" : 1 }`, nil},
		{`{"a":"0xAB"}`, `{"a":"0xab"}`, []string{`a: "0xAB" != "0xab"`}},
		{`{"a":1}`, `{"a":1.0}`, []string{`a: 1 != 1.0`}},
		{`{"a":null}`, `{}`, []string{`a: null != <missing>`}},
		{`{}`, `{"b":false}`, []string{`b: <missing> != false`}},
		{`{"r":{"x":[1,{"y":2}]}}`, `{"r":{"x":[1,{"y":3},4]}}`, []string{`r.x[1].y: 2 != 3`, `r.x[2]: <missing> != 4`}},
		{`{"a":[1]}`, `{"a":{"0":1}}`, []string{`a: [1] != {"0":1}`}},
		{`"s"`, `"s"`, nil},
		{`1`, `"1"`, []string{`(root): 1 != "1"`}},
		{`123456789012345678901234567890`, `123456789012345678901234567891`, []string{`(root): 123456789012345678901234567890 != 123456789012345678901234567891`}},
	}
	for _, c := range cases {
		diffs, err := Compare([]byte(c.a), []byte(c.b))
		if err != nil {
			t.Fatalf("%s vs %s: %v", c.a, c.b, err)
		}
		var got []string
		for _, d := range diffs {
			got = append(got, d.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s vs %s:\n got  %q\n want %q", c.a, c.b, got, c.want)
		}
	}
	if _, err := Compare([]byte(`{"a":`), []byte(`{}`)); err == nil {
		t.Error("malformed document accepted")
	}
	if _, err := Compare([]byte(`{} {}`), []byte(`{}`)); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"result":                        "result",
		"result.transactions[12].hash":  "result.transactions[].hash",
		"result[0][1].x":                "result[][].x",
		"error.data":                    "error.data",
		"result.accountProof[3]":        "result.accountProof[]",
		"result.storageProof[0].key[1]": "result.storageProof[].key[]",
	} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatchPath(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"result", "result", true},
		{"result", "result.hash", true},
		{"result", "result[]", true},
		{"result", "resultX", false},
		{"result.hash", "result.parentHash", false},
		{"", "anything.at.all", true},
		{"error", "error.message", true},
		{"error.message", "error", false},
		{"result.*.hash", "result.transactions[].hash", true}, // a member with its indices
		{"result.*.hash", "result.a.b.hash", false},           // "*" does not cross "."
		{"result.*", "result.a.b", true},                      // wildcard patterns cover descendants too
		{"result.*.hash", "result.block.hash", true},
		{"result.*", "result.stateRoot", true},
		{"**", "x.y", true},
	} {
		if got := MatchPath(c.pattern, c.path); got != c.want {
			t.Errorf("MatchPath(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

// TestRules checks the allow-list and the known-bug list: every entry has a
// reason, names a method, and no entry of one list shadows the other.
func TestRules(t *testing.T) {
	for name, list := range map[string][]rule{"allowed": allowed, "knownBugs": knownBugs} {
		for i, r := range list {
			if strings.TrimSpace(r.reason) == "" || r.method == "" {
				t.Errorf("%s[%d] (%s %s): every entry needs a method and a reason", name, i, r.method, r.path)
			}
		}
	}
	for _, a := range allowed {
		for _, b := range knownBugs {
			if a.method == b.method && a.name == b.name && a.path == b.path {
				t.Errorf("%s %q %s is both allowed and a known bug", a.method, a.name, a.path)
			}
		}
	}
}
