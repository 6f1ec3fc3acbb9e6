package rpc

import (
	"context"
	"errors"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// handlerFunc decodes its parameters from a and appends its JSON result to dst.
type handlerFunc func(s *Server, ctx context.Context, a *args, dst []byte) ([]byte, error)

type method struct {
	fn      handlerFunc
	maxArgs int
}

// methods is the dispatch table.
var methods = map[string]method{
	"eth_chainId":        {(*Server).ethChainID, 0},
	"net_version":        {(*Server).netVersion, 0},
	"net_listening":      {(*Server).netListening, 0},
	"net_peerCount":      {(*Server).netPeerCount, 0},
	"web3_clientVersion": {(*Server).web3ClientVersion, 0},
	"web3_sha3":          {(*Server).web3Sha3, 1},
	"eth_accounts":       {(*Server).ethAccounts, 0},
	"eth_syncing":        {(*Server).ethSyncing, 0},
	"eth_blockNumber":    {(*Server).ethBlockNumber, 0},

	"eth_getBalance":          {(*Server).ethGetBalance, 2},
	"eth_getTransactionCount": {(*Server).ethGetTransactionCount, 2},
	"eth_getCode":             {(*Server).ethGetCode, 2},
	"eth_getStorageAt":        {(*Server).ethGetStorageAt, 3},
	"eth_getProof":            {(*Server).ethGetProof, 3},

	"eth_call":                 {(*Server).ethCall, 4},
	"eth_estimateGas":          {(*Server).ethEstimateGas, 4},
	"eth_gasPrice":             {(*Server).ethGasPrice, 0},
	"eth_maxPriorityFeePerGas": {(*Server).ethMaxPriorityFeePerGas, 0},
	"eth_feeHistory":           {(*Server).ethFeeHistory, 3},

	"eth_sendRawTransaction":     {(*Server).ethSendRawTransaction, 1},
	"eth_sendRawTransactionSync": {(*Server).ethSendRawTransactionSync, 2},

	"eth_getTransactionByHash":                {(*Server).ethGetTransactionByHash, 1},
	"eth_getTransactionReceipt":               {(*Server).ethGetTransactionReceipt, 1},
	"eth_getBlockByNumber":                    {(*Server).ethGetBlockByNumber, 2},
	"eth_getBlockByHash":                      {(*Server).ethGetBlockByHash, 2},
	"eth_getBlockReceipts":                    {(*Server).ethGetBlockReceipts, 1},
	"eth_getBlockTransactionCountByNumber":    {(*Server).ethGetBlockTxCountByNumber, 1},
	"eth_getBlockTransactionCountByHash":      {(*Server).ethGetBlockTxCountByHash, 1},
	"eth_getTransactionByBlockNumberAndIndex": {(*Server).ethGetTxByBlockNumberAndIndex, 2},
	"eth_getTransactionByBlockHashAndIndex":   {(*Server).ethGetTxByBlockHashAndIndex, 2},
	"eth_getLogs":                             {(*Server).ethGetLogs, 1},
}

func (s *Server) ethChainID(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return append(dst, s.chainIDJSON...), nil
}

func (s *Server) netVersion(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return appendString(dst, s.b.ChainID().String()), nil
}

func (s *Server) netListening(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return append(dst, jsonTrue...), nil
}

func (s *Server) netPeerCount(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return appendUint64Hex(dst, 0), nil
}

func (s *Server) web3ClientVersion(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return appendString(dst, s.b.ClientVersion()), nil
}

func (s *Server) web3Sha3(_ context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	data, err := parseBytes(0, raw)
	if err != nil {
		return dst, err
	}
	return appendBytesHex(dst, crypto.Keccak256(data)), nil
}

func (s *Server) ethAccounts(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return append(dst, '[', ']'), nil
}

func (s *Server) ethSyncing(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return append(dst, jsonFalse...), nil
}

func (s *Server) ethBlockNumber(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return appendUint64Hex(dst, s.b.HeadNumber()), nil
}

// addressAndBlock decodes the (address, block) parameters. Both are required,
// as in go-ethereum (whose block parameter is not a pointer).
func addressAndBlock(a *args) (common.Address, BlockRef, error) {
	raw, err := a.arg(0)
	if err != nil {
		return common.Address{}, BlockRef{}, err
	}
	addr, err := parseAddress(0, raw)
	if err != nil {
		return addr, BlockRef{}, err
	}
	ref, err := stateBlock(a, 1)
	return addr, ref, err
}

// checkHeader reports the error go-ethereum's headerByNumberOrHash gives when
// ref names no block (ErrUnknownBlock, or the lookup's error), nil otherwise.
func (s *Server) checkHeader(ctx context.Context, ref BlockRef) error {
	h, _, err := s.b.HeaderByRef(ctx, ref)
	if err != nil {
		return err
	}
	if h == nil {
		return ErrUnknownBlock
	}
	return nil
}

func (s *Server) ethGetBalance(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	addr, ref, err := addressAndBlock(a)
	if err != nil {
		return dst, err
	}
	bal, err := s.b.Balance(ctx, addr, ref)
	if err != nil {
		return dst, err
	}
	if bal == nil {
		return appendUint64Hex(dst, 0), nil
	}
	return appendU256Hex(dst, bal), nil
}

func (s *Server) ethGetTransactionCount(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	addr, ref, err := addressAndBlock(a)
	if err != nil {
		return dst, err
	}
	nonce, err := s.b.Nonce(ctx, addr, ref)
	if err != nil {
		return dst, err
	}
	return appendUint64Hex(dst, nonce), nil
}

func (s *Server) ethGetCode(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	addr, ref, err := addressAndBlock(a)
	if err != nil {
		return dst, err
	}
	code, err := s.b.Code(ctx, addr, ref)
	if err != nil {
		return dst, err
	}
	return appendBytesHex(dst, code), nil
}

func (s *Server) ethGetStorageAt(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	addr, err := parseAddress(0, raw)
	if err != nil {
		return dst, err
	}
	rawKey, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	hexKey, err := parseStorageKey(1, rawKey)
	if err != nil {
		return dst, err
	}
	ref, err := stateBlock(a, 2)
	if err != nil {
		return dst, err
	}
	key, _, err := decodeStorageKey(hexKey)
	if err != nil {
		// go-ethereum decodes the key after looking the block up.
		if herr := s.checkHeader(ctx, ref); herr != nil {
			return dst, herr
		}
		return dst, storageKeyError(err, hexKey)
	}
	val, err := s.b.Storage(ctx, addr, key, ref)
	if err != nil {
		return dst, err
	}
	return appendHash(dst, val), nil
}

func (s *Server) ethGasPrice(ctx context.Context, _ *args, dst []byte) ([]byte, error) {
	price := new(big.Int)
	if tip := s.b.SuggestTipCap(ctx); tip != nil {
		price.Set(tip)
	}
	head, _, err := s.b.HeaderByRef(ctx, BlockRef{Tag: TagPending})
	if err != nil {
		return dst, err
	}
	if head != nil && head.BaseFee != nil {
		price.Add(price, head.BaseFee)
	}
	return appendBigHex(dst, price), nil
}

func (s *Server) ethMaxPriorityFeePerGas(ctx context.Context, _ *args, dst []byte) ([]byte, error) {
	tip := s.b.SuggestTipCap(ctx)
	if tip == nil {
		tip = new(big.Int)
	}
	return appendBigHex(dst, tip), nil
}

func (s *Server) ethSendRawTransaction(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	tx, err := parseBytes(0, raw)
	if err != nil {
		return dst, err
	}
	hash, err := s.b.SendRawTransaction(ctx, tx)
	if err != nil {
		return dst, err
	}
	return appendHash(dst, hash), nil
}

// parseTimeoutMs decodes the EIP-7966 timeout: milliseconds as a JSON number or
// a hex quantity string.
func parseTimeoutMs(i int, raw []byte) (uint64, error) {
	if raw[0] == '"' {
		return parseUint64(i, raw, "hexutil.Uint64")
	}
	if raw[0] == '-' || raw[0] < '0' || raw[0] > '9' {
		return 0, typeError(i, jsonKind(raw)+" "+string(raw), "uint64")
	}
	v, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, typeError(i, "number "+string(raw), "uint64")
	}
	return v, nil
}

func (s *Server) ethSendRawTransactionSync(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	tx, err := parseBytes(0, raw)
	if err != nil {
		return dst, err
	}
	var ms uint64
	if v := a.get(1); v != nil {
		if ms, err = parseTimeoutMs(1, v); err != nil {
			return dst, err
		}
	}
	info, err := s.b.SendRawTransactionSync(ctx, tx, s.syncTimeout(ms))
	if err != nil {
		if errors.Is(err, ErrSyncTimeout) {
			return dst, &Error{Code: CodeTxSyncTimeout, Message: err.Error(), Data: rawJSON(appendHash(nil, rawTxHash(tx)))}
		}
		return dst, err
	}
	if info == nil || info.Receipt == nil || info.Tx == nil {
		return dst, errors.New("transaction receipt not available")
	}
	return appendReceipt(dst, info.Receipt, info.Tx, info.From, info.Sealed), nil
}

// rawTxHash is the hash of an encoded transaction.
func rawTxHash(raw []byte) common.Hash {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err == nil {
		return tx.Hash()
	}
	return crypto.Keccak256Hash(raw)
}

func hashParam(a *args, i int) (common.Hash, error) {
	raw, err := a.arg(i)
	if err != nil {
		return common.Hash{}, err
	}
	return parseHash(i, raw)
}

// txByHash looks up the transaction named by parameter 0; nil when unknown.
func (s *Server) txByHash(ctx context.Context, a *args) (*TxInfo, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return nil, err
	}
	info, err := s.b.Transaction(ctx, hash)
	if err != nil || info == nil || info.Tx == nil {
		return nil, err
	}
	return info, nil
}

func (s *Server) ethGetTransactionByHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	info, err := s.txByHash(ctx, a)
	if err != nil {
		return dst, err
	}
	if info == nil {
		return append(dst, jsonNull...), nil
	}
	return s.appendTxInfo(ctx, dst, info), nil
}

// appendTxInfo prints a located transaction as eth_getTransactionByHash does.
func (s *Server) appendTxInfo(ctx context.Context, dst []byte, info *TxInfo) []byte {
	var loc txLoc
	if !info.Pending {
		loc = txLoc{inBlock: true, number: info.BlockNumber, index: info.Index, baseFee: info.BaseFee}
		if info.Sealed {
			h := info.BlockHash
			loc.blockHash = &h
		}
		if !info.Sealed && info.Time != 0 {
			loc.time = info.Time
		} else if head := s.txHeader(ctx, info); head != nil {
			loc.time = head.Time
			if loc.baseFee == nil {
				loc.baseFee = head.BaseFee
			}
		}
	}
	return s.appendTx(dst, info.Tx, info.Sender, &loc, nil)
}

// txHeader finds the header of the block holding info's transaction, for its
// timestamp.
func (s *Server) txHeader(ctx context.Context, info *TxInfo) *types.Header {
	if info.Sealed {
		if h, _, err := s.b.HeaderByRef(ctx, BlockRef{Tag: TagHash, Hash: info.BlockHash}); err == nil && h != nil {
			return h
		}
	}
	for _, ref := range []BlockRef{{Tag: TagNumber, Number: info.BlockNumber}, {Tag: TagPending}} {
		h, _, err := s.b.HeaderByRef(ctx, ref)
		if err == nil && h != nil && h.Number != nil && h.Number.IsUint64() && h.Number.Uint64() == info.BlockNumber {
			return h
		}
	}
	return nil
}

func (s *Server) ethGetTransactionReceipt(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	info, err := s.b.Receipt(ctx, hash)
	if err != nil {
		return dst, err
	}
	if info == nil || info.Receipt == nil || info.Tx == nil {
		return append(dst, jsonNull...), nil
	}
	return appendReceipt(dst, info.Receipt, info.Tx, info.From, info.Sealed), nil
}

// block fetches a block; a nil block without error means "unknown" (null).
func (s *Server) block(ctx context.Context, ref BlockRef) (*Block, error) {
	b, err := s.b.BlockByRef(ctx, ref)
	if errors.Is(err, ErrUnknownBlock) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if b == nil || b.Header == nil {
		return nil, nil
	}
	return b, nil
}

func (s *Server) blockAndFlag(ctx context.Context, a *args, ref BlockRef, dst []byte) ([]byte, error) {
	rawFull, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	full, err := parseBool(1, rawFull)
	if err != nil {
		return dst, err
	}
	b, err := s.block(ctx, ref)
	if err != nil || b == nil {
		return append(dst, jsonNull...), err
	}
	return s.appendBlock(dst, b, full), nil
}

func (s *Server) ethGetBlockByNumber(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ref, err := blockNumberParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.blockAndFlag(ctx, a, ref, dst)
}

func (s *Server) ethGetBlockByHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.blockAndFlag(ctx, a, BlockRef{Tag: TagHash, Hash: hash}, dst)
}

func (s *Server) ethGetBlockReceipts(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0) // null or {}: errNoBlock, go-ethereum's answer too
	if err != nil {
		return dst, err
	}
	ref, err := parseBlockNumberOrHash(0, raw)
	if err != nil {
		return dst, err
	}
	b, err := s.block(ctx, ref)
	if err != nil || b == nil {
		return append(dst, jsonNull...), err
	}
	if len(b.Receipts) != len(b.Txs) {
		return dst, errors.New("receipts length mismatch: " + strconv.Itoa(len(b.Txs)) + " vs " + strconv.Itoa(len(b.Receipts)))
	}
	dst = append(dst, '[')
	for i, r := range b.Receipts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendReceipt(dst, r, b.Txs[i], s.sender(b, i), b.Sealed)
	}
	return append(dst, ']'), nil
}

func (s *Server) txCount(ctx context.Context, ref BlockRef, dst []byte) ([]byte, error) {
	b, err := s.block(ctx, ref)
	if err != nil || b == nil {
		return append(dst, jsonNull...), err
	}
	return appendUint64Hex(dst, uint64(len(b.Txs))), nil
}

func (s *Server) ethGetBlockTxCountByNumber(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ref, err := blockNumberParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.txCount(ctx, ref, dst)
}

func (s *Server) ethGetBlockTxCountByHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.txCount(ctx, BlockRef{Tag: TagHash, Hash: hash}, dst)
}

func (s *Server) txByIndex(ctx context.Context, a *args, ref BlockRef, dst []byte) ([]byte, error) {
	rawIdx, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	idx, err := parseUint64(1, rawIdx, "hexutil.Uint")
	if err != nil {
		return dst, err
	}
	b, err := s.block(ctx, ref)
	if err != nil || b == nil || idx >= uint64(len(b.Txs)) {
		return append(dst, jsonNull...), err
	}
	var number uint64
	if b.Header.Number != nil {
		number = b.Header.Number.Uint64()
	}
	loc := txLoc{inBlock: true, blockHash: blockHash(b), number: number, time: b.Header.Time, index: idx, baseFee: b.Header.BaseFee}
	var rcpt *types.Receipt
	if idx < uint64(len(b.Receipts)) {
		rcpt = b.Receipts[idx]
	}
	return s.appendTx(dst, b.Txs[idx], s.sender(b, int(idx)), &loc, rcpt), nil
}

func (s *Server) ethGetTxByBlockNumberAndIndex(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ref, err := blockNumberParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.txByIndex(ctx, a, ref, dst)
}

func (s *Server) ethGetTxByBlockHashAndIndex(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.txByIndex(ctx, a, BlockRef{Tag: TagHash, Hash: hash}, dst)
}
