package rpc

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/holiman/uint256"
)

// The hand-written encoders must produce exactly what encoding/json produces for
// go-ethereum's hexutil types and for strings and floats.

func checkEncoders(t *testing.T, s string, u uint64, words [4]uint64, f float64) {
	t.Helper()
	if got, want := appendString(nil, s), mustJSON(t, s); string(got) != string(want) {
		t.Fatalf("string %q: got %s want %s", s, got, want)
	}
	if got, want := appendUint64Hex(nil, u), mustJSON(t, hexutil.Uint64(u)); string(got) != string(want) {
		t.Fatalf("uint64 %d: got %s want %s", u, got, want)
	}
	v := uint256.Int(words)
	if got, want := appendU256Hex(nil, &v), mustJSON(t, (*hexutil.U256)(&v)); string(got) != string(want) {
		t.Fatalf("u256 %v: got %s want %s", words, got, want)
	}
	b := v.ToBig()
	if got, want := appendBigHex(nil, b), mustJSON(t, (*hexutil.Big)(b)); string(got) != string(want) {
		t.Fatalf("big %v: got %s want %s", b, got, want)
	}
	neg := new(big.Int).Neg(b)
	if got, want := appendBigHex(nil, neg), mustJSON(t, (*hexutil.Big)(neg)); string(got) != string(want) {
		t.Fatalf("big %v: got %s want %s", neg, got, want)
	}
	if !math.IsNaN(f) && !math.IsInf(f, 0) {
		if got, want := appendFloat(nil, f), mustJSON(t, f); string(got) != string(want) {
			t.Fatalf("float %v: got %s want %s", f, got, want)
		}
	}
	if got, want := appendBytesHex(nil, []byte(s)), mustJSON(t, hexutil.Bytes(s)); string(got) != string(want) {
		t.Fatalf("bytes %q: got %s want %s", s, got, want)
	}
}

func TestEncoders(t *testing.T) {
	strs := []string{"", "abc", "a\"b\\c", "<tag>&amp;", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é漢字", "\xff\xfe", "a\xc3", "\u2028\u2029", "\U0001F600"}
	nums := []uint64{0, 1, 15, 16, 255, 256, 1 << 32, math.MaxUint64}
	floats := []float64{0, 1, 0.5, 1e-7, 1.5e-7, 1e20, 1e21, 123456.789, 2.0 / 3.0, -0.25, 5e-324}
	for i, s := range strs {
		for j, u := range nums {
			checkEncoders(t, s, u, [4]uint64{u, uint64(i), 0, uint64(j) << 60}, floats[(i+j)%len(floats)])
		}
	}
	checkEncoders(t, "", 0, [4]uint64{0, 0, 0, 0}, 0)
	checkEncoders(t, "", 0, [4]uint64{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}, 0)
	if string(appendFloat(nil, math.NaN())) != "0" {
		t.Error("NaN")
	}
	if string(appendBigHex(nil, nil)) != "null" || string(appendU256Hex(nil, nil)) != "null" {
		t.Error("nil numbers")
	}
}

func FuzzEncoders(f *testing.F) {
	f.Add("x", uint64(1), uint64(2), uint64(3), uint64(4), 0.5)
	f.Fuzz(func(t *testing.T, s string, a, b, c, d uint64, fl float64) {
		checkEncoders(t, s, a, [4]uint64{a, b, c, d}, fl)
	})
}

func TestValidJSONCases(t *testing.T) {
	deep := make([]byte, 0, 20002)
	for range 10001 {
		deep = append(deep, '[')
	}
	for range 10001 {
		deep = append(deep, ']')
	}
	for _, s := range []string{
		``, `{}`, `[]`, `[1,2,{"a":[true,false,null]}]`, `"\u00e9\n"`, `-0.5e+3`, `01`, `1.`, `.5`, `-`, `{"a" 1}`, `{"a":1,}`,
		`[1,]`, `[1 2]`, `"\x"`, "\"\x01\"", `"\u12g4"`, `{"a":1}}`, `[[[]]]`, `nul`, `truex`, `1e`, `1e+`, `"abc`, "\"\xff\"", string(deep), string(deep[1 : len(deep)-1]),
	} {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid = %v", s, got, want)
		}
	}
}
