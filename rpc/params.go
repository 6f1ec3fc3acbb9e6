package rpc

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// maxArgs is the largest number of positional parameters any method takes.
const maxArgs = 4

// args holds the raw positional parameters of one call. Parameters are validated
// JSON; a JSON null counts as absent for optional parameters.
type args struct {
	n int
	v [maxArgs][]byte
}

// splitParams splits the raw "params" member into at most max positional values.
func splitParams(raw []byte, a *args, max int) error {
	a.n = 0
	raw = trimWS(raw)
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	if raw[0] != '[' {
		return invalidParams("non-array args")
	}
	var err error
	forEachElem(raw, func(elem []byte) bool {
		if a.n >= max {
			err = invalidParams("too many arguments, want at most %d", max)
			return false
		}
		a.v[a.n] = elem
		a.n++
		return true
	})
	return err
}

// get returns parameter i, or nil when it is absent or null.
func (a *args) get(i int) []byte {
	if i >= a.n || isNull(a.v[i]) {
		return nil
	}
	return a.v[i]
}

// required returns parameter i or a "missing value" error.
func (a *args) required(i int) ([]byte, error) {
	v := a.get(i)
	if v == nil {
		return nil, invalidParams("missing value for required argument %d", i)
	}
	return v, nil
}

// argError formats a decoding failure of parameter i like go-ethereum's
// "invalid argument 0: json: cannot unmarshal ... into Go value of type ...".
func argError(i int, err error) *Error {
	return invalidParams("invalid argument %d: %v", i, err)
}

func typeError(i int, what, typ string) *Error {
	return invalidParams("invalid argument %d: json: cannot unmarshal %s into Go value of type %s", i, what, typ)
}

// hexString returns the contents of a JSON string parameter without decoding
// escapes (go-ethereum's hexutil types read the raw text between the quotes).
func hexString(i int, raw []byte, typ string) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, typeError(i, "non-string", typ)
	}
	return raw[1 : len(raw)-1], nil
}

func has0x(b []byte) bool { return len(b) >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') }

// decodeHexBytes decodes like hexutil.Bytes.UnmarshalText ("" and "0x" are empty).
func decodeHexBytes(in []byte) ([]byte, error) {
	if len(in) == 0 {
		return []byte{}, nil
	}
	if !has0x(in) {
		return nil, hexutil.ErrMissingPrefix
	}
	in = in[2:]
	if len(in)%2 != 0 {
		return nil, hexutil.ErrOddLength
	}
	out := make([]byte, len(in)/2)
	if _, err := hex.Decode(out, in); err != nil {
		return nil, hexutil.ErrSyntax
	}
	return out, nil
}

// decodeHexFixed decodes like hexutil.UnmarshalFixedText into out.
func decodeHexFixed(in []byte, out []byte, typ string) error {
	if len(in) > 0 {
		if !has0x(in) {
			return hexutil.ErrMissingPrefix
		}
		in = in[2:]
	}
	if len(in)%2 != 0 {
		return hexutil.ErrOddLength
	}
	if len(in)/2 != len(out) {
		return fmt.Errorf("hex string has length %d, want %d for %s", len(in), len(out)*2, typ)
	}
	if _, err := hex.Decode(out, in); err != nil {
		return hexutil.ErrSyntax
	}
	return nil
}

func hexNibble(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

// checkQuantity mirrors hexutil's checkNumberText: prefix required, no empty
// number, no leading zeros. emptyOK allows "" (hexutil.Uint64 JSON accepts it).
func checkQuantity(in []byte, emptyOK bool) ([]byte, error) {
	if len(in) == 0 {
		if emptyOK {
			return nil, nil
		}
		return nil, hexutil.ErrEmptyString
	}
	if !has0x(in) {
		return nil, hexutil.ErrMissingPrefix
	}
	in = in[2:]
	if len(in) == 0 {
		return nil, hexutil.ErrEmptyNumber
	}
	if len(in) > 1 && in[0] == '0' {
		return nil, hexutil.ErrLeadingZero
	}
	return in, nil
}

// decodeQuantity decodes a hex QUANTITY of at most 64 bits.
func decodeQuantity(in []byte, emptyOK bool) (uint64, error) {
	raw, err := checkQuantity(in, emptyOK)
	if err != nil || raw == nil {
		return 0, err
	}
	if len(raw) > 16 {
		return 0, hexutil.ErrUint64Range
	}
	var v uint64
	for _, c := range raw {
		n, ok := hexNibble(c)
		if !ok {
			return 0, hexutil.ErrSyntax
		}
		v = v<<4 | n
	}
	return v, nil
}

// decodeBigQuantity decodes a hex QUANTITY of at most 256 bits (hexutil.Big).
func decodeBigQuantity(in []byte) (*big.Int, error) {
	raw, err := checkQuantity(in, true)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return new(big.Int), nil
	}
	if len(raw) > 64 {
		return nil, hexutil.ErrBig256Range
	}
	for _, c := range raw {
		if _, ok := hexNibble(c); !ok {
			return nil, hexutil.ErrSyntax
		}
	}
	v, ok := new(big.Int).SetString(string(raw), 16)
	if !ok {
		return nil, hexutil.ErrSyntax
	}
	return v, nil
}

// wrapHexErr wraps hexutil's decoding errors the way encoding/json reports them.
func wrapHexErr(i int, err error, typ string) *Error {
	switch err {
	case hexutil.ErrEmptyString, hexutil.ErrSyntax, hexutil.ErrMissingPrefix, hexutil.ErrOddLength,
		hexutil.ErrEmptyNumber, hexutil.ErrLeadingZero, hexutil.ErrUint64Range, hexutil.ErrBig256Range:
		return typeError(i, err.Error(), typ)
	}
	return argError(i, err)
}

// Parameter decoders. i is the parameter position, used in error messages.

func parseBytes(i int, raw []byte) ([]byte, error) {
	s, err := hexString(i, raw, "hexutil.Bytes")
	if err != nil {
		return nil, err
	}
	b, derr := decodeHexBytes(s)
	if derr != nil {
		return nil, wrapHexErr(i, derr, "hexutil.Bytes")
	}
	return b, nil
}

func parseAddress(i int, raw []byte) (common.Address, error) {
	var a common.Address
	s, err := hexString(i, raw, "common.Address")
	if err != nil {
		return a, err
	}
	if derr := decodeHexFixed(s, a[:], "common.Address"); derr != nil {
		return a, wrapHexErr(i, derr, "common.Address")
	}
	return a, nil
}

func parseHash(i int, raw []byte) (common.Hash, error) {
	var h common.Hash
	s, err := hexString(i, raw, "common.Hash")
	if err != nil {
		return h, err
	}
	if derr := decodeHexFixed(s, h[:], "common.Hash"); derr != nil {
		return h, wrapHexErr(i, derr, "common.Hash")
	}
	return h, nil
}

func parseUint64(i int, raw []byte, typ string) (uint64, error) {
	s, err := hexString(i, raw, typ)
	if err != nil {
		return 0, err
	}
	v, derr := decodeQuantity(s, true)
	if derr != nil {
		return 0, wrapHexErr(i, derr, typ)
	}
	return v, nil
}

func parseBool(i int, raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, typeError(i, jsonKind(raw), "bool")
}

// parseBlockNumber decodes a block number parameter like rpc.BlockNumber: a tag
// or a hex number, quoted (go-ethereum also strips the quotes without decoding
// escapes).
func parseBlockNumber(i int, raw []byte) (BlockRef, error) {
	in := trimWS(raw)
	if len(in) >= 2 && in[0] == '"' && in[len(in)-1] == '"' {
		in = in[1 : len(in)-1]
	}
	if ref, ok := blockTag(in); ok {
		return ref, nil
	}
	n, err := decodeQuantity(in, false)
	if err != nil {
		return BlockRef{}, argError(i, err)
	}
	if n > math.MaxInt64 {
		return BlockRef{}, argError(i, errors.New("block number larger than int64"))
	}
	return BlockRef{Tag: TagNumber, Number: n}, nil
}

func blockTag(in []byte) (BlockRef, bool) {
	switch string(in) {
	case "latest":
		return BlockRef{Tag: TagLatest}, true
	case "pending":
		return BlockRef{Tag: TagPending}, true
	case "safe":
		return BlockRef{Tag: TagSafe}, true
	case "finalized":
		return BlockRef{Tag: TagFinalized}, true
	case "earliest":
		return BlockRef{Tag: TagEarliest}, true
	}
	return BlockRef{}, false
}

// parseBlockNumberOrHash decodes an EIP-1898 block parameter like
// rpc.BlockNumberOrHash: a tag, a hex number, a 32-byte hash, or an object
// {"blockNumber": ...} / {"blockHash": ..., "requireCanonical": bool}.
func parseBlockNumberOrHash(i int, raw []byte) (BlockRef, error) {
	switch raw[0] {
	case '{':
		var obj struct {
			BlockNumber      json.RawMessage `json:"blockNumber"`
			BlockHash        *common.Hash    `json:"blockHash"`
			RequireCanonical bool            `json:"requireCanonical"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return BlockRef{}, argError(i, err)
		}
		hasNumber := len(obj.BlockNumber) > 0 && !isNull(obj.BlockNumber)
		switch {
		case hasNumber && obj.BlockHash != nil:
			return BlockRef{}, argError(i, errors.New("cannot specify both BlockHash and BlockNumber, choose one or the other"))
		case obj.BlockHash != nil:
			return BlockRef{Tag: TagHash, Hash: *obj.BlockHash, RequireCanonical: obj.RequireCanonical}, nil
		case hasNumber:
			return parseBlockNumber(i, obj.BlockNumber)
		default:
			return BlockRef{}, argError(i, errors.New("neither block nor hash specified"))
		}
	case '"':
		s, ok := unquote(raw)
		if !ok {
			return BlockRef{}, typeError(i, "string", "string")
		}
		if ref, ok := blockTag(s); ok {
			return ref, nil
		}
		if len(s) == 66 {
			var h common.Hash
			if err := decodeHexFixed(s, h[:], "common.Hash"); err != nil {
				return BlockRef{}, argError(i, err)
			}
			return BlockRef{Tag: TagHash, Hash: h}, nil
		}
		n, err := decodeQuantity(s, false)
		if err != nil {
			return BlockRef{}, argError(i, err)
		}
		if n > math.MaxInt64 {
			return BlockRef{}, argError(i, errors.New("blocknumber too high"))
		}
		return BlockRef{Tag: TagNumber, Number: n}, nil
	default:
		return BlockRef{}, typeError(i, jsonKind(raw), "string")
	}
}

// optBlock decodes optional parameter i as an EIP-1898 block, defaulting to def.
func optBlock(a *args, i int, def BlockTag) (BlockRef, error) {
	raw := a.get(i)
	if raw == nil {
		return BlockRef{Tag: def}, nil
	}
	return parseBlockNumberOrHash(i, raw)
}

// decodeStorageKey parses a storage slot leniently like go-ethereum: optional 0x
// prefix, odd lengths padded, at most 32 bytes. It returns the slot and the
// number of input bytes.
func decodeStorageKey(s string) (common.Hash, int, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	if len(s)&1 == 1 {
		s = "0" + s
	}
	if len(s) > 64 {
		return common.Hash{}, len(s) / 2, errors.New("storage key too long (want at most 32 bytes)")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return common.Hash{}, 0, errors.New("invalid hex in storage key")
	}
	return common.BytesToHash(b), len(b), nil
}

// parseStorageKey decodes a storage key parameter (a JSON string).
func parseStorageKey(i int, raw []byte) (common.Hash, int, error) {
	if raw[0] != '"' {
		return common.Hash{}, 0, typeError(i, jsonKind(raw), "string")
	}
	s, ok := unquote(raw)
	if !ok {
		return common.Hash{}, 0, typeError(i, "string", "string")
	}
	h, n, err := decodeStorageKey(string(s))
	if err != nil {
		return h, n, invalidParams("%v: %q", err, s)
	}
	return h, n, nil
}

// blockNumberParam parses the required block-number parameter i.
func blockNumberParam(a *args, i int) (BlockRef, error) {
	raw, err := a.required(i)
	if err != nil {
		return BlockRef{}, err
	}
	return parseBlockNumber(i, raw)
}
