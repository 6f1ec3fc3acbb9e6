package rpc

// validJSON reports whether b is one valid JSON value (surrounded by optional
// whitespace), accepting exactly what encoding/json.Valid accepts, including its
// nesting limit. It is a non-recursive single pass with tight loops for strings,
// several times faster than json.Valid on hex-heavy request bodies.
func validJSON(b []byte) bool {
	const maxDepth = 10000 // encoding/json's maxNestingDepth
	var (
		stackBuf [64]byte
		stack    = stackBuf[:0]
		i        = skipWS(b, 0)
		ok       bool
	)
value:
	if i >= len(b) {
		return false
	}
	switch c := b[i]; {
	case c == '{':
		if len(stack) >= maxDepth {
			return false
		}
		stack = append(stack, '{')
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			stack = stack[:len(stack)-1]
			i++
			goto next
		}
		if i, ok = scanKey(b, i); !ok {
			return false
		}
		goto value
	case c == '[':
		if len(stack) >= maxDepth {
			return false
		}
		stack = append(stack, '[')
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			stack = stack[:len(stack)-1]
			i++
			goto next
		}
		goto value
	case c == '"':
		if i, ok = scanString(b, i); !ok {
			return false
		}
	case c == 't':
		if len(b)-i < 4 || string(b[i:i+4]) != "true" {
			return false
		}
		i += 4
	case c == 'f':
		if len(b)-i < 5 || string(b[i:i+5]) != "false" {
			return false
		}
		i += 5
	case c == 'n':
		if len(b)-i < 4 || string(b[i:i+4]) != "null" {
			return false
		}
		i += 4
	case c == '-' || (c >= '0' && c <= '9'):
		if i, ok = scanNumber(b, i); !ok {
			return false
		}
	default:
		return false
	}
next:
	i = skipWS(b, i)
	if len(stack) == 0 {
		return i == len(b)
	}
	if i >= len(b) {
		return false
	}
	top := stack[len(stack)-1]
	switch b[i] {
	case ',':
		i = skipWS(b, i+1)
		if top == '{' {
			if i, ok = scanKey(b, i); !ok {
				return false
			}
		}
		goto value
	case '}':
		if top != '{' {
			return false
		}
	case ']':
		if top != '[' {
			return false
		}
	default:
		return false
	}
	stack = stack[:len(stack)-1]
	i++
	goto next
}

// scanKey scans `"key" :` and the whitespace after it.
func scanKey(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i, ok := scanString(b, i)
	if !ok {
		return i, false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return skipWS(b, i+1), true
}

// scanString validates the string starting at b[i] == '"' and returns the
// index after its closing quote.
func scanString(b []byte, i int) (int, bool) {
	j := i + 1
	for j < len(b) {
		c := b[j]
		if c >= 0x20 && c != '"' && c != '\\' {
			j++
			continue
		}
		switch c {
		case '"':
			return j + 1, true
		case '\\':
			if j+1 >= len(b) {
				return j, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) {
					return j, false
				}
				for _, h := range b[j+2 : j+6] {
					if _, ok := hexNibble(h); !ok {
						return j, false
					}
				}
				j += 6
			default:
				return j, false
			}
		default: // control character
			return j, false
		}
	}
	return j, false
}

// scanNumber validates a JSON number starting at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, false
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, false
		}
	}
	return i, true
}
