package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

type respError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

type response struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *respError      `json:"error"`
}

func newTestServer(t testing.TB, b Backend, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg, b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request builds a request body.
func reqBody(t testing.TB, id any, method string, params ...any) []byte {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// do sends one request and decodes the single response.
func do(t testing.TB, s *Server, body []byte) response {
	t.Helper()
	out := s.HandleBody(context.Background(), body)
	var r response
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("invalid response %q: %v", out, err)
	}
	if r.Version != "2.0" {
		t.Fatalf("response without jsonrpc 2.0: %s", out)
	}
	return r
}

// result calls method and returns the raw result, failing on an error response.
func result(t testing.TB, s *Server, method string, params ...any) json.RawMessage {
	t.Helper()
	r := do(t, s, reqBody(t, 1, method, params...))
	if r.Error != nil {
		t.Fatalf("%s: unexpected error %d %q", method, r.Error.Code, r.Error.Message)
	}
	return r.Result
}

// callErr calls method and returns the error, failing on success.
func callErr(t testing.TB, s *Server, body []byte) *respError {
	t.Helper()
	r := do(t, s, body)
	if r.Error == nil {
		t.Fatalf("request %s: expected an error, got result %s", body, r.Result)
	}
	return r.Error
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eqJSON compares byte for byte (field order included).
func eqJSON(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n got: %s\nwant: %s", what, got, want)
	}
}

// ---- Reference encodings, built the way go-ethereum's internal/ethapi builds
// them (maps for blocks and receipts, the RPCTransaction struct for
// transactions), then marshaled with encoding/json.

func refHeader(head *types.Header) map[string]any {
	result := map[string]any{
		"number":           (*hexutil.Big)(head.Number),
		"hash":             head.Hash(),
		"parentHash":       head.ParentHash,
		"nonce":            head.Nonce,
		"mixHash":          head.MixDigest,
		"sha3Uncles":       head.UncleHash,
		"logsBloom":        head.Bloom,
		"stateRoot":        head.Root,
		"miner":            head.Coinbase,
		"difficulty":       (*hexutil.Big)(head.Difficulty),
		"extraData":        hexutil.Bytes(head.Extra),
		"gasLimit":         hexutil.Uint64(head.GasLimit),
		"gasUsed":          hexutil.Uint64(head.GasUsed),
		"timestamp":        hexutil.Uint64(head.Time),
		"transactionsRoot": head.TxHash,
		"receiptsRoot":     head.ReceiptHash,
	}
	if head.BaseFee != nil {
		result["baseFeePerGas"] = (*hexutil.Big)(head.BaseFee)
	}
	if head.WithdrawalsHash != nil {
		result["withdrawalsRoot"] = head.WithdrawalsHash
	}
	if head.BlobGasUsed != nil {
		result["blobGasUsed"] = hexutil.Uint64(*head.BlobGasUsed)
	}
	if head.ExcessBlobGas != nil {
		result["excessBlobGas"] = hexutil.Uint64(*head.ExcessBlobGas)
	}
	if head.ParentBeaconRoot != nil {
		result["parentBeaconBlockRoot"] = head.ParentBeaconRoot
	}
	if head.RequestsHash != nil {
		result["requestsHash"] = head.RequestsHash
	}
	return result
}

type refRPCTransaction struct {
	BlockHash           *common.Hash                 `json:"blockHash"`
	BlockNumber         *hexutil.Big                 `json:"blockNumber"`
	BlockTimestamp      *hexutil.Uint64              `json:"blockTimestamp"`
	From                common.Address               `json:"from"`
	Gas                 hexutil.Uint64               `json:"gas"`
	GasPrice            *hexutil.Big                 `json:"gasPrice"`
	GasFeeCap           *hexutil.Big                 `json:"maxFeePerGas,omitempty"`
	GasTipCap           *hexutil.Big                 `json:"maxPriorityFeePerGas,omitempty"`
	MaxFeePerBlobGas    *hexutil.Big                 `json:"maxFeePerBlobGas,omitempty"`
	Hash                common.Hash                  `json:"hash"`
	Input               hexutil.Bytes                `json:"input"`
	Nonce               hexutil.Uint64               `json:"nonce"`
	To                  *common.Address              `json:"to"`
	TransactionIndex    *hexutil.Uint64              `json:"transactionIndex"`
	Value               *hexutil.Big                 `json:"value"`
	Type                hexutil.Uint64               `json:"type"`
	Accesses            *types.AccessList            `json:"accessList,omitempty"`
	ChainID             *hexutil.Big                 `json:"chainId,omitempty"`
	BlobVersionedHashes []common.Hash                `json:"blobVersionedHashes,omitempty"`
	AuthorizationList   []types.SetCodeAuthorization `json:"authorizationList,omitempty"`
	V                   *hexutil.Big                 `json:"v"`
	R                   *hexutil.Big                 `json:"r"`
	S                   *hexutil.Big                 `json:"s"`
	YParity             *hexutil.Uint64              `json:"yParity,omitempty"`
}

// refTx mirrors newRPCTransaction. blockHash zero: not in a block.
func refTx(tx *types.Transaction, from common.Address, blockHash common.Hash, number, time, index uint64, baseFee *big.Int) *refRPCTransaction {
	v, r, s := tx.RawSignatureValues()
	res := &refRPCTransaction{
		Type: hexutil.Uint64(tx.Type()), From: from, Gas: hexutil.Uint64(tx.Gas()), GasPrice: (*hexutil.Big)(tx.GasPrice()),
		Hash: tx.Hash(), Input: tx.Data(), Nonce: hexutil.Uint64(tx.Nonce()), To: tx.To(), Value: (*hexutil.Big)(tx.Value()),
		V: (*hexutil.Big)(v), R: (*hexutil.Big)(r), S: (*hexutil.Big)(s),
	}
	if blockHash != (common.Hash{}) {
		res.BlockHash = &blockHash
		res.BlockNumber = (*hexutil.Big)(new(big.Int).SetUint64(number))
		res.BlockTimestamp = (*hexutil.Uint64)(&time)
		res.TransactionIndex = (*hexutil.Uint64)(&index)
	}
	yp := hexutil.Uint64(v.Sign())
	al := tx.AccessList()
	switch tx.Type() {
	case types.LegacyTxType:
		if id := tx.ChainId(); id.Sign() != 0 {
			res.ChainID = (*hexutil.Big)(id)
		}
	case types.AccessListTxType:
		res.Accesses, res.ChainID, res.YParity = &al, (*hexutil.Big)(tx.ChainId()), &yp
	case types.DynamicFeeTxType, types.BlobTxType, types.SetCodeTxType:
		res.Accesses, res.ChainID, res.YParity = &al, (*hexutil.Big)(tx.ChainId()), &yp
		res.GasFeeCap, res.GasTipCap = (*hexutil.Big)(tx.GasFeeCap()), (*hexutil.Big)(tx.GasTipCap())
		if baseFee != nil && blockHash != (common.Hash{}) {
			res.GasPrice = (*hexutil.Big)(effectiveGasPrice(tx, baseFee))
		} else {
			res.GasPrice = (*hexutil.Big)(tx.GasFeeCap())
		}
		if tx.Type() == types.BlobTxType {
			res.MaxFeePerBlobGas = (*hexutil.Big)(tx.BlobGasFeeCap())
			res.BlobVersionedHashes = tx.BlobHashes()
		}
		if tx.Type() == types.SetCodeTxType {
			res.AuthorizationList = tx.SetCodeAuthorizations()
		}
	}
	return res
}

// refReceipt mirrors MarshalReceipt (non-OP chain).
func refReceipt(r *types.Receipt, blockHash common.Hash, number uint64, from common.Address, tx *types.Transaction, idx int) map[string]any {
	fields := map[string]any{
		"blockHash":         blockHash,
		"blockNumber":       hexutil.Uint64(number),
		"transactionHash":   tx.Hash(),
		"transactionIndex":  hexutil.Uint64(idx),
		"from":              from,
		"to":                tx.To(),
		"gasUsed":           hexutil.Uint64(r.GasUsed),
		"cumulativeGasUsed": hexutil.Uint64(r.CumulativeGasUsed),
		"contractAddress":   nil,
		"logs":              r.Logs,
		"logsBloom":         r.Bloom,
		"type":              hexutil.Uint(tx.Type()),
		"effectiveGasPrice": (*hexutil.Big)(r.EffectiveGasPrice),
	}
	if len(r.PostState) > 0 {
		fields["root"] = hexutil.Bytes(r.PostState)
	} else {
		fields["status"] = hexutil.Uint(r.Status)
	}
	if r.Logs == nil {
		fields["logs"] = []*types.Log{}
	}
	if tx.Type() == types.BlobTxType {
		fields["blobGasUsed"] = hexutil.Uint64(r.BlobGasUsed)
		fields["blobGasPrice"] = (*hexutil.Big)(r.BlobGasPrice)
	}
	if r.ContractAddress != (common.Address{}) {
		fields["contractAddress"] = r.ContractAddress
	}
	return fields
}

// refBlock mirrors RPCMarshalBlock for a sealed block.
func refBlock(b *Block, full bool, cfg *params.ChainConfig) map[string]any {
	fields := refHeader(b.Header)
	fields["size"] = hexutil.Uint64(b.Size)
	txs := make([]any, len(b.Txs))
	for i, tx := range b.Txs {
		if full {
			txs[i] = refTx(tx, b.Senders[i], b.Hash, b.Header.Number.Uint64(), b.Header.Time, uint64(i), b.Header.BaseFee)
		} else {
			txs[i] = tx.Hash()
		}
	}
	fields["transactions"] = txs
	fields["uncles"] = []common.Hash{}
	if b.Header.WithdrawalsHash != nil {
		fields["withdrawals"] = []*types.Withdrawal{}
	}
	return fields
}

func big1() *big.Int { return big.NewInt(gwei) }
