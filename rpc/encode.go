package rpc

import (
	"encoding/hex"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// Append-style JSON encoders. They produce exactly what encoding/json produces for
// the go-ethereum hexutil / common types (lower-case hex, quantities without
// leading zeros, HTML-safe string escaping), without reflection or allocation.

const hexDigits = "0123456789abcdef"

var (
	jsonNull  = []byte("null")
	jsonTrue  = []byte("true")
	jsonFalse = []byte("false")
)

// appendUint64Hex appends v as a JSON string QUANTITY ("0x0", "0x1a").
func appendUint64Hex(dst []byte, v uint64) []byte {
	dst = append(dst, '"', '0', 'x')
	dst = appendHexDigits(dst, v)
	return append(dst, '"')
}

func appendHexDigits(dst []byte, v uint64) []byte {
	if v == 0 {
		return append(dst, '0')
	}
	var buf [16]byte
	i := len(buf)
	for v > 0 {
		i--
		buf[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return append(dst, buf[i:]...)
}

// appendBigHex appends v like hexutil.Big: null for nil, "-0x.." for negative.
func appendBigHex(dst []byte, v *big.Int) []byte {
	if v == nil {
		return append(dst, jsonNull...)
	}
	dst = append(dst, '"')
	if v.Sign() < 0 {
		dst = append(dst, '-', '0', 'x')
		dst = new(big.Int).Neg(v).Append(dst, 16)
		return append(dst, '"')
	}
	dst = append(dst, '0', 'x')
	if v.IsUint64() {
		dst = appendHexDigits(dst, v.Uint64())
	} else {
		dst = v.Append(dst, 16)
	}
	return append(dst, '"')
}

// appendU256Hex appends v like hexutil.U256 (null for nil).
func appendU256Hex(dst []byte, v *uint256.Int) []byte {
	if v == nil {
		return append(dst, jsonNull...)
	}
	if v.IsUint64() {
		return appendUint64Hex(dst, v.Uint64())
	}
	dst = append(dst, '"', '0', 'x')
	started := false
	for i := 3; i >= 0; i-- {
		w := v[i]
		if !started {
			if w == 0 {
				continue
			}
			dst = appendHexDigits(dst, w)
			started = true
			continue
		}
		for shift := 60; shift >= 0; shift -= 4 {
			dst = append(dst, hexDigits[(w>>uint(shift))&0xf])
		}
	}
	return append(dst, '"')
}

// appendBytesHex appends b like hexutil.Bytes ("0x" for empty).
func appendBytesHex(dst []byte, b []byte) []byte {
	dst = append(dst, '"', '0', 'x')
	dst = hex.AppendEncode(dst, b)
	return append(dst, '"')
}

func appendHash(dst []byte, h common.Hash) []byte { return appendBytesHex(dst, h[:]) }

func appendAddress(dst []byte, a common.Address) []byte { return appendBytesHex(dst, a[:]) }

func appendHashPtr(dst []byte, h *common.Hash) []byte {
	if h == nil {
		return append(dst, jsonNull...)
	}
	return appendHash(dst, *h)
}

func appendAddressPtr(dst []byte, a *common.Address) []byte {
	if a == nil {
		return append(dst, jsonNull...)
	}
	return appendAddress(dst, *a)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, jsonTrue...)
	}
	return append(dst, jsonFalse...)
}

// appendString appends s as a JSON string, escaping it the way encoding/json does
// (HTML-safe, U+2028/U+2029 escaped) and replacing invalid UTF-8 with U+FFFD so
// that the output is always valid JSON.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloat appends f the way encoding/json encodes a float64. NaN and
// infinities, which JSON cannot represent, are written as 0.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst) - start
		if n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// appendHexList appends a list of byte strings as a JSON array of hex strings
// ([] for an empty list).
func appendHexList(dst []byte, list [][]byte) []byte {
	dst = append(dst, '[')
	for i, b := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendBytesHex(dst, b)
	}
	return append(dst, ']')
}
