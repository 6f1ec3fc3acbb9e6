package rpc

import (
	"bytes"
	"encoding/json"
)

// A minimal scanner over JSON text that has already been validated (json.Valid).
// It never recurses, so deeply nested input cannot exhaust the stack, and it only
// finds value boundaries: values are decoded where they are used.

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// trimWS removes leading and trailing JSON whitespace.
func trimWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isWS(b[i]) {
		i++
	}
	for j > i && isWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		q := j + k
		// Count the backslashes right before the quote: an odd number escapes it.
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == ']' || c == '}' || isWS(c) {
				break
			}
			j++
		}
		return j
	}
}

// forEachElem calls fn with every element of the JSON array arr (whitespace
// trimmed, arr[0] == '['). It stops early when fn returns false.
func forEachElem(arr []byte, fn func(elem []byte) bool) {
	i := skipWS(arr, 1)
	if i < len(arr) && arr[i] == ']' {
		return
	}
	for i < len(arr) {
		end := valueEnd(arr, i)
		if !fn(arr[i:end]) {
			return
		}
		i = skipWS(arr, end)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
		i = skipWS(arr, i+1)
	}
}

// forEachField calls fn with the raw key (including quotes) and raw value of every
// member of the JSON object obj (whitespace trimmed, obj[0] == '{').
func forEachField(obj []byte, fn func(key, val []byte)) {
	i := skipWS(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		kend := stringEnd(obj, i)
		key := obj[i:kend]
		i = skipWS(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipWS(obj, i+1)
		vend := valueEnd(obj, i)
		fn(key, obj[i:vend])
		i = skipWS(obj, vend)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i = skipWS(obj, i+1)
	}
}

// unquote returns the contents of the JSON string s (with quotes). Strings without
// escapes are returned without copying.
func unquote(s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, false
	}
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	var str string
	if err := json.Unmarshal(s, &str); err != nil {
		return nil, false
	}
	return []byte(str), true
}

// keyIs reports whether the raw JSON key (with quotes) names field, matching like
// encoding/json does (exact, then case-insensitive; escapes decoded).
func keyIs(rawKey []byte, field string) bool {
	if len(rawKey) == len(field)+2 && string(rawKey[1:len(rawKey)-1]) == field {
		return true
	}
	k, ok := unquote(rawKey)
	if !ok {
		return false
	}
	return bytes.EqualFold(k, []byte(field))
}

// jsonKind names the JSON type of the raw value v the way encoding/json's
// UnmarshalTypeError does.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }
