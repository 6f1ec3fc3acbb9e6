package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"

	"github.com/kestrel-l2/kestrel/rpc/override"
)

// TransactionArgs are the transaction arguments of eth_call, eth_estimateGas
// and eth_createAccessList, as go-ethereum's (blob sidecars, which calls do not
// use, are accepted and ignored). The type's name appears in decoding errors,
// as in go-ethereum.
type TransactionArgs struct {
	From                 *common.Address              `json:"from"`
	To                   *common.Address              `json:"to"`
	Gas                  *hexutil.Uint64              `json:"gas"`
	GasPrice             *hexutil.Big                 `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big                 `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big                 `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big                 `json:"value"`
	Nonce                *hexutil.Uint64              `json:"nonce"`
	Data                 *hexutil.Bytes               `json:"data"`
	Input                *hexutil.Bytes               `json:"input"`
	AccessList           *types.AccessList            `json:"accessList,omitempty"`
	ChainID              *hexutil.Big                 `json:"chainId,omitempty"`
	BlobFeeCap           *hexutil.Big                 `json:"maxFeePerBlobGas"`
	BlobHashes           []common.Hash                `json:"blobVersionedHashes,omitempty"`
	AuthorizationList    []types.SetCodeAuthorization `json:"authorizationList"`
}

// parseTxArgs decodes parameter 0 of eth_call / eth_estimateGas.
func parseTxArgs(a *args) (*TransactionArgs, error) {
	if a.n == 0 {
		return nil, invalidParams("missing value for required argument 0")
	}
	var ta TransactionArgs
	raw := a.get(0)
	if raw == nil {
		return &ta, nil
	}
	if raw[0] != '{' {
		return nil, typeError(0, jsonKind(raw), "ethapi.TransactionArgs")
	}
	if err := json.Unmarshal(raw, &ta); err != nil {
		return nil, argError(0, err)
	}
	return &ta, nil
}

// toCallMsg applies go-ethereum's eth_call defaults (CallDefaults / ToMessage).
// gasCap is the cap for the gas limit (0: none); when args carry no gas limit
// the message gets defGas. baseFee is the base fee of the block executed on; it
// is only consulted when 1559 fee fields are given.
func (s *Server) toCallMsg(ta *TransactionArgs, defGas, gasCap uint64, baseFee func() (*big.Int, error)) (*CallMsg, error) {
	// As go-ethereum's CallDefaults: plain errors (code -32000), and "input"
	// wins over a differing "data".
	if ta.GasPrice != nil && (ta.MaxFeePerGas != nil || ta.MaxPriorityFeePerGas != nil) {
		return nil, errors.New("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	}
	if ta.ChainID != nil {
		have, want := (*big.Int)(ta.ChainID), s.b.ChainID()
		if have.Cmp(want) != 0 {
			return nil, fmt.Errorf("chainId does not match node's (have=%v, want=%v)", have, want)
		}
	}
	msg := &CallMsg{To: ta.To, Value: new(big.Int)}
	if ta.From != nil {
		msg.From = *ta.From
	}
	if ta.Gas != nil {
		msg.Gas = uint64(*ta.Gas)
		if gasCap != 0 && msg.Gas > gasCap {
			msg.Gas = gasCap
		}
	} else {
		msg.Gas = defGas
	}
	if ta.Value != nil {
		msg.Value = (*big.Int)(ta.Value)
	}
	if ta.Nonce != nil {
		n := uint64(*ta.Nonce)
		msg.Nonce = &n
	}
	if ta.Input != nil {
		msg.Data = *ta.Input
	} else if ta.Data != nil {
		msg.Data = *ta.Data
	}
	if ta.AccessList != nil {
		msg.AccessList = *ta.AccessList
	}
	msg.AuthList = ta.AuthorizationList
	// As CallDefaults / ToMessage: blob hashes (even an empty list) make a blob
	// call, whose blob fee cap defaults to zero.
	msg.BlobHashes = ta.BlobHashes
	if ta.BlobFeeCap != nil {
		msg.BlobFeeCap = (*big.Int)(ta.BlobFeeCap)
	} else if ta.BlobHashes != nil {
		msg.BlobFeeCap = new(big.Int)
	}

	switch {
	case ta.GasPrice != nil:
		p := (*big.Int)(ta.GasPrice)
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = p, p, p
	case ta.MaxFeePerGas != nil || ta.MaxPriorityFeePerGas != nil:
		feeCap, tipCap := new(big.Int), new(big.Int)
		if ta.MaxFeePerGas != nil {
			feeCap = (*big.Int)(ta.MaxFeePerGas)
		}
		if ta.MaxPriorityFeePerGas != nil {
			tipCap = (*big.Int)(ta.MaxPriorityFeePerGas)
		}
		bf, err := baseFee()
		if err != nil {
			return nil, err
		}
		price := new(big.Int)
		if bf == nil {
			// Pre-London execution: go-ethereum uses the (absent) legacy price.
			feeCap, tipCap = price, price
		} else if feeCap.Sign() > 0 || tipCap.Sign() > 0 {
			price.Add(tipCap, bf)
			if price.Cmp(feeCap) > 0 {
				price.Set(feeCap)
			}
		}
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = price, feeCap, tipCap
	default:
		zero := new(big.Int)
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = zero, zero, zero
		msg.SkipNonceAndFeeChecks = true
	}
	return msg, nil
}

// parseOverrides decodes the state and block overrides of eth_call and
// eth_estimateGas (parameters i and i+1; null or absent: none) as go-ethereum
// decodes them, with its messages.
func parseOverrides(a *args, i int) (*override.StateOverride, *override.BlockOverrides, error) {
	var so *override.StateOverride
	var bo *override.BlockOverrides
	if raw := a.get(i); raw != nil {
		if err := json.Unmarshal(raw, &so); err != nil {
			return nil, nil, argError(i, err)
		}
	}
	if raw := a.get(i + 1); raw != nil {
		if err := json.Unmarshal(raw, &bo); err != nil {
			return nil, nil, argError(i+1, err)
		}
	}
	return so, bo, nil
}

// checkOverrides reports the errors go-ethereum's DoCall and DoEstimateGas
// find in the overrides before they look at the transaction arguments (so
// that a request with both kinds of error gets go-ethereum's): the block, then
// refused block overrides, then state overrides that do not fit the
// precompiles of the (overridden) block. The backend applies them.
func (s *Server) checkOverrides(ctx context.Context, ref BlockRef, so *override.StateOverride, bo *override.BlockOverrides) error {
	if so == nil && bo == nil {
		return nil
	}
	h, _, err := s.b.HeaderByRef(ctx, ref)
	if err != nil {
		return err
	}
	if h == nil {
		return ErrUnknownBlock
	}
	if err := bo.Check(); err != nil {
		return err
	}
	cfg := s.b.ChainConfig()
	if so == nil || cfg == nil {
		return nil
	}
	number, time := bo.NumberAndTime(h.Number, h.Time)
	return so.Check(vm.ActivePrecompiledContracts(cfg.Rules(number, true, time)))
}

func (s *Server) baseFeeOf(ctx context.Context, ref BlockRef) func() (*big.Int, error) {
	return func() (*big.Int, error) {
		h, _, err := s.b.HeaderByRef(ctx, ref)
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, ErrUnknownBlock
		}
		return h.BaseFee, nil
	}
}

// ethCall: eth_call(args, block = "latest", stateOverrides, blockOverrides).
func (s *Server) ethCall(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ta, err := parseTxArgs(a)
	if err != nil {
		return dst, err
	}
	ref, refErr := optStateBlock(a, 1, TagLatest)
	if refErr != nil && refErr != ErrUnknownBlock {
		return dst, refErr
	}
	so, bo, err := parseOverrides(a, 2)
	if err != nil {
		return dst, err
	}
	if refErr != nil {
		return dst, refErr // {}: no block, "header not found" after decoding every parameter
	}
	if err := s.checkOverrides(ctx, ref, so, bo); err != nil {
		return dst, err
	}
	gasCap := s.b.GasCap()
	msg, err := s.toCallMsg(ta, gasCap, gasCap, s.baseFeeOf(ctx, ref))
	if err != nil {
		return dst, err
	}
	msg.StateOverrides, msg.BlockOverrides = so, bo
	out, err := s.b.Call(ctx, msg, ref)
	if err != nil {
		return dst, err
	}
	return appendBytesHex(dst, out), nil
}

// ethEstimateGas: eth_estimateGas(args, block = "pending", stateOverrides, blockOverrides).
// Unlike go-ethereum (which uses "latest"), the default block is "pending": on a
// 10 ms mini-block chain the open block is what the transaction will land in.
func (s *Server) ethEstimateGas(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ta, err := parseTxArgs(a)
	if err != nil {
		return dst, err
	}
	ref, refErr := optStateBlock(a, 1, TagPending)
	if refErr != nil && refErr != ErrUnknownBlock {
		return dst, refErr
	}
	so, bo, err := parseOverrides(a, 2)
	if err != nil {
		return dst, err
	}
	if refErr != nil {
		return dst, refErr // {}: no block, "header not found" after decoding every parameter
	}
	if err := s.checkOverrides(ctx, ref, so, bo); err != nil {
		return dst, err
	}
	// As go-ethereum: no gas limit given means 0, i.e. search up to the cap.
	msg, err := s.toCallMsg(ta, 0, s.b.GasCap(), s.baseFeeOf(ctx, ref))
	if err != nil {
		return dst, err
	}
	msg.StateOverrides, msg.BlockOverrides = so, bo
	gas, err := s.b.EstimateGas(ctx, msg, ref)
	if err != nil {
		return dst, err
	}
	return appendUint64Hex(dst, gas), nil
}

const maxGetProofKeys = 1024

// ethGetProof: eth_getProof(address, storageKeys, block).
func (s *Server) ethGetProof(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	addr, err := parseAddress(0, raw)
	if err != nil {
		return dst, err
	}
	// As go-ethereum: first the parameters are decoded (the keys as strings),
	// then the number of keys is checked, then the block is looked up, and only
	// then are the keys decoded.
	rawKeys, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	var hexKeys []string
	if !isNull(rawKeys) {
		if rawKeys[0] != '[' {
			return dst, typeError(1, jsonKind(rawKeys), "[]string")
		}
		forEachElem(rawKeys, func(e []byte) bool {
			var k string
			if k, err = parseStorageKey(1, e); err != nil {
				return false
			}
			hexKeys = append(hexKeys, k)
			return true
		})
		if err != nil {
			return dst, err
		}
	}
	ref, err := stateBlock(a, 2)
	if err != nil && err != ErrUnknownBlock {
		return dst, err
	}
	if len(hexKeys) > maxGetProofKeys {
		return dst, invalidParams("too many storage keys requested (max %d, got %d)", maxGetProofKeys, len(hexKeys))
	}
	if err != nil {
		return dst, err // a block parameter that selects no block
	}
	keys, keyLens := make([]common.Hash, len(hexKeys)), make([]int, len(hexKeys))
	for i, k := range hexKeys {
		if keys[i], keyLens[i], err = decodeStorageKey(k); err != nil {
			if herr := s.checkHeader(ctx, ref); herr != nil {
				return dst, herr
			}
			return dst, storageKeyError(err, k)
		}
	}
	res, err := s.b.Proof(ctx, addr, keys, ref)
	if err != nil {
		return dst, err
	}
	if res == nil {
		return dst, errors.New("proof not available")
	}
	dst = append(dst, `{"address":`...)
	dst = appendAddress(dst, addr)
	dst = append(dst, `,"accountProof":`...)
	dst = appendHexList(dst, res.AccountProof)
	dst = append(dst, `,"balance":`...)
	if res.Balance == nil {
		dst = appendUint64Hex(dst, 0)
	} else {
		dst = appendU256Hex(dst, res.Balance)
	}
	dst = append(dst, `,"codeHash":`...)
	dst = appendHash(dst, res.CodeHash)
	dst = append(dst, `,"nonce":`...)
	dst = appendUint64Hex(dst, res.Nonce)
	dst = append(dst, `,"storageHash":`...)
	dst = appendHash(dst, res.StorageHash)
	dst = append(dst, `,"storageProof":[`...)
	for i, key := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		var sr StorageResult
		if i < len(res.StorageProof) {
			sr = res.StorageProof[i]
		}
		// As go-ethereum: a 32-byte key is echoed as a hash, shorter ones as a
		// quantity.
		dst = append(dst, `{"key":`...)
		if keyLens[i] == 32 {
			dst = appendHash(dst, key)
		} else {
			dst = appendBigHex(dst, key.Big())
		}
		dst = append(dst, `,"value":`...)
		dst = appendBigHex(dst, sr.Value.Big())
		dst = append(dst, `,"proof":`...)
		dst = appendHexList(dst, sr.Proof)
		dst = append(dst, '}')
	}
	return append(dst, ']', '}'), nil
}
