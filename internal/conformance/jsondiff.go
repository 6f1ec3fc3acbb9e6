// Package conformance compares Kestrel's JSON-RPC answers with go-ethereum's,
// the reference implementation of the Ethereum JSON-RPC API. Its test builds a
// chain of mixed transactions on an in-process Kestrel sequencer, imports the
// very same blocks into an in-process go-ethereum node (which re-executes them
// and rejects any block whose derived fields differ), and sends the same
// battery of requests to both over HTTP. Every difference in the JSON answers
// fails the test unless an entry of the test's allow-list explains why it is
// legitimate (see conformance_test.go).
//
// This file holds the one piece that is not test code: a field-by-field JSON
// comparison that reports the path and both values of every difference.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Missing stands for a member that one document has and the other lacks
// (distinct from a JSON null).
type Missing struct{}

// String renders the marker in reports.
func (Missing) String() string { return "<missing>" }

// Difference is one place where two JSON documents disagree.
type Difference struct {
	// Path locates the value, e.g. "result.transactions[3].hash"; "" is the
	// document itself.
	Path string
	// A and B are the two values (decoded with json.Number for numbers), or
	// Missing when the member is absent on that side.
	A, B any
}

// Pattern is Path with array indices removed ("result.transactions[].hash"),
// the form allow-list patterns match.
func (d Difference) Pattern() string { return NormalizePath(d.Path) }

// String renders the difference on one line.
func (d Difference) String() string {
	return fmt.Sprintf("%s: %s != %s", orRoot(d.Path), Render(d.A), Render(d.B))
}

func orRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

// Render prints a decoded JSON value compactly (Missing as "<missing>").
func Render(v any) string {
	if _, ok := v.(Missing); ok {
		return "<missing>"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 400
	if len(b) > max {
		return string(b[:max]) + fmt.Sprintf("…(%d bytes)", len(b))
	}
	return string(b)
}

// Decode parses a JSON document keeping numbers exact.
func Decode(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// Compare decodes two JSON documents and returns every difference between
// them, member by member and element by element, in path order. Object member
// order and insignificant whitespace are not differences; everything else is
// (string case included: "0xAB" and "0xab" differ).
func Compare(a, b []byte) ([]Difference, error) {
	va, err := Decode(a)
	if err != nil {
		return nil, fmt.Errorf("first document: %w", err)
	}
	vb, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("second document: %w", err)
	}
	return CompareValues(va, vb), nil
}

// CompareValues compares two decoded JSON values (see Compare).
func CompareValues(a, b any) []Difference {
	var out []Difference
	walk("", a, b, &out)
	return out
}

func walk(p string, a, b any, out *[]Difference) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, Difference{Path: p, A: a, B: b})
			return
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, dup := x[k]; !dup {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			va, okA := x[k]
			vb, okB := y[k]
			sub := k
			if p != "" {
				sub = p + "." + k
			}
			switch {
			case !okA:
				*out = append(*out, Difference{Path: sub, A: Missing{}, B: vb})
			case !okB:
				*out = append(*out, Difference{Path: sub, A: va, B: Missing{}})
			default:
				walk(sub, va, vb, out)
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok {
			*out = append(*out, Difference{Path: p, A: a, B: b})
			return
		}
		n := max(len(x), len(y))
		for i := 0; i < n; i++ {
			sub := p + "[" + strconv.Itoa(i) + "]"
			switch {
			case i >= len(x):
				*out = append(*out, Difference{Path: sub, A: Missing{}, B: y[i]})
			case i >= len(y):
				*out = append(*out, Difference{Path: sub, A: x[i], B: Missing{}})
			default:
				walk(sub, x[i], y[i], out)
			}
		}
	default:
		if !scalarEqual(a, b) {
			*out = append(*out, Difference{Path: p, A: a, B: b})
		}
	}
}

func scalarEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && x == y
	}
	return false
}

// NormalizePath removes array indices from a difference path.
func NormalizePath(p string) string {
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		sb.WriteByte(p[i])
		if p[i] == '[' {
			for i+1 < len(p) && p[i+1] != ']' {
				i++
			}
		}
	}
	return sb.String()
}

// MatchPath reports whether a normalised difference path is covered by an
// allow-list pattern: the pattern equals the path, is an ancestor of it
// ("result" covers "result.hash" and "result[]"), or matches it with "*"
// standing for one member name ("result.*.hash").
func MatchPath(pattern, normalized string) bool {
	if pattern == "**" || pattern == normalized {
		return true
	}
	if strings.HasPrefix(normalized, pattern) {
		rest := normalized[len(pattern):]
		if pattern == "" || strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "[") {
			return true
		}
	}
	if strings.Contains(pattern, "*") {
		pp := strings.Split(pattern, ".")
		np := strings.Split(normalized, ".")
		if len(np) < len(pp) {
			return false
		}
		for i := range pp {
			if ok, _ := path.Match(pp[i], np[i]); !ok {
				return false
			}
		}
		return true
	}
	return false
}
