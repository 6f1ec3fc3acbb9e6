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

// required returns parameter i or a "missing value" error; JSON null counts as
// missing.
func (a *args) required(i int) ([]byte, error) {
	v := a.get(i)
	if v == nil {
		return nil, invalidParams("missing value for required argument %d", i)
	}
	return v, nil
}

// arg returns parameter i as sent, JSON null included, or a "missing value"
// error when the call has fewer parameters. This is go-ethereum's rule for a
// parameter of a non-pointer type: only an absent one is missing, and null is
// decoded as that type decodes it (hex types refuse it as a non-string, a
// bool, string or slice takes its zero value, a block number is not hex).
func (a *args) arg(i int) ([]byte, error) {
	if i >= a.n {
		return nil, invalidParams("missing value for required argument %d", i)
	}
	return a.v[i], nil
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

// parseBool decodes a bool parameter; null is false, as encoding/json leaves a
// bool unchanged for null.
func parseBool(i int, raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, typeError(i, jsonKind(raw), "bool")
}

// blockNumber decodes a block number like go-ethereum's rpc.BlockNumber
// (UnmarshalJSON): a tag or a hex number, quoted or not (the quotes are
// stripped without decoding escapes). Its errors are go-ethereum's, unwrapped.
type blockNumber struct{ ref BlockRef }

func (bn *blockNumber) UnmarshalJSON(raw []byte) error {
	in := trimWS(raw)
	if len(in) >= 2 && in[0] == '"' && in[len(in)-1] == '"' {
		in = in[1 : len(in)-1]
	}
	if ref, ok := blockTag(in); ok {
		bn.ref = ref
		return nil
	}
	n, err := decodeQuantity(in, false)
	if err != nil {
		return err
	}
	if n > math.MaxInt64 {
		return errors.New("block number larger than int64")
	}
	bn.ref = BlockRef{Tag: TagNumber, Number: n}
	return nil
}

// parseBlockNumber decodes a block number parameter like rpc.BlockNumber (JSON
// null included: it is not a hex number).
func parseBlockNumber(i int, raw []byte) (BlockRef, error) {
	var bn blockNumber
	if err := bn.UnmarshalJSON(raw); err != nil {
		return BlockRef{}, argError(i, err)
	}
	return bn.ref, nil
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

// errNoBlock is what go-ethereum's backend answers for an EIP-1898 block
// parameter that selects no block: {} (or an object with neither blockNumber
// nor blockHash), or JSON null where the parameter is not a pointer. That is not
// a decoding error; the methods that read state (through go-ethereum's
// headerByNumberOrHash) answer ErrUnknownBlock ("header not found") instead,
// see stateBlock and optStateBlock.
var errNoBlock = errors.New("invalid arguments; neither block nor hash specified")

// parseBlockNumberOrHash decodes an EIP-1898 block parameter like
// rpc.BlockNumberOrHash: a tag, a hex number, a 32-byte hash, or an object
// {"blockNumber": ...} / {"blockHash": ..., "requireCanonical": bool}. As
// go-ethereum, an object that does not decode is reported as not being a
// string (its fallback decoding), and null or an object that selects nothing
// returns errNoBlock.
func parseBlockNumberOrHash(i int, raw []byte) (BlockRef, error) {
	switch raw[0] {
	case '{', 'n':
		var obj struct {
			BlockNumber      *blockNumber `json:"blockNumber"`
			BlockHash        *common.Hash `json:"blockHash"`
			RequireCanonical bool         `json:"requireCanonical"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return BlockRef{}, typeError(i, jsonKind(raw), "string")
		}
		switch {
		case obj.BlockNumber != nil && obj.BlockHash != nil:
			return BlockRef{}, argError(i, errors.New("cannot specify both BlockHash and BlockNumber, choose one or the other"))
		case obj.BlockHash != nil:
			return BlockRef{Tag: TagHash, Hash: *obj.BlockHash, RequireCanonical: obj.RequireCanonical}, nil
		case obj.BlockNumber != nil:
			return obj.BlockNumber.ref, nil
		default:
			return BlockRef{}, errNoBlock
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

// stateBlock decodes the required block parameter i of the methods that read
// state at a block (eth_getBalance, eth_getCode, eth_getTransactionCount,
// eth_getStorageAt, eth_getProof): go-ethereum's parameter is a
// rpc.BlockNumberOrHash, not a pointer, so an absent one is a missing argument,
// and null or {} selects no block ("header not found").
func stateBlock(a *args, i int) (BlockRef, error) {
	raw, err := a.arg(i)
	if err != nil {
		return BlockRef{}, err
	}
	ref, err := parseBlockNumberOrHash(i, raw)
	if err == errNoBlock {
		err = ErrUnknownBlock
	}
	return ref, err
}

// optBlock decodes optional parameter i (go-ethereum: *rpc.BlockNumberOrHash)
// as an EIP-1898 block, defaulting to def when absent or null. An object that
// selects no block returns errNoBlock.
func optBlock(a *args, i int, def BlockTag) (BlockRef, error) {
	raw := a.get(i)
	if raw == nil {
		return BlockRef{Tag: def}, nil
	}
	return parseBlockNumberOrHash(i, raw)
}

// optStateBlock is optBlock for eth_call and eth_estimateGas, which look the
// header up first: {} is "header not found".
func optStateBlock(a *args, i int, def BlockTag) (BlockRef, error) {
	ref, err := optBlock(a, i, def)
	if err == errNoBlock {
		err = ErrUnknownBlock
	}
	return ref, err
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

// parseStorageKey checks that a storage key parameter is a JSON string (a Go
// string in go-ethereum; null decodes as ""). The key itself is decoded by
// decodeStorageKey, later: go-ethereum decodes it after looking the block up.
func parseStorageKey(i int, raw []byte) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", typeError(i, jsonKind(raw), "string")
	}
	s, ok := unquote(raw)
	if !ok {
		return "", typeError(i, "string", "string")
	}
	return string(s), nil
}

// storageKeyError is go-ethereum's invalid-params error for a key
// decodeStorageKey refuses.
func storageKeyError(err error, key string) error {
	return invalidParams("%v: %q", err, key)
}

// blockNumberParam parses the required block-number parameter i.
func blockNumberParam(a *args, i int) (BlockRef, error) {
	raw, err := a.arg(i)
	if err != nil {
		return BlockRef{}, err
	}
	return parseBlockNumber(i, raw)
}
