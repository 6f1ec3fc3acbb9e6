package rpc

import (
	"encoding/json"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// JSON shapes of blocks, transactions, receipts and logs, field for field as
// go-ethereum's internal/ethapi prints them: blocks and receipts are maps there,
// so their keys are sorted; transactions and logs are structs, in field order.
//
// Where a block is not sealed yet (the open block, or a transaction or receipt in
// it) the block hash is printed as null, and for blocks also nonce and miner, as
// go-ethereum does for its pending block.

// appendKey appends `"key":`, preceded by a comma unless it is the first member.
func appendKey(dst []byte, key string) []byte {
	if len(dst) > 0 && dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// blockHash is the hash printed for b; nil when the block is not sealed.
func blockHash(b *Block) *common.Hash {
	if !b.Sealed {
		return nil
	}
	h := b.Hash
	if h == (common.Hash{}) {
		h = b.Header.Hash()
	}
	return &h
}

// sender returns the sender of b.Txs[i].
func (s *Server) sender(b *Block, i int) common.Address {
	if i < len(b.Senders) {
		return b.Senders[i]
	}
	from, _ := types.Sender(s.signer, b.Txs[i])
	return from
}

func (s *Server) appendBlock(dst []byte, b *Block, fullTx bool) []byte {
	return s.appendBlockFields(dst, b, fullTx, false)
}

// appendHeader prints a block's header as go-ethereum's RPCMarshalHeader
// (eth_getHeaderByNumber): the block's fields without size, transactions,
// uncles and withdrawals.
func (s *Server) appendHeader(dst []byte, b *Block) []byte {
	return s.appendBlockFields(dst, b, false, true)
}

func (s *Server) appendBlockFields(dst []byte, b *Block, fullTx, headerOnly bool) []byte {
	h := b.Header
	hash := blockHash(b)
	dst = append(dst, '{')
	if h.BaseFee != nil {
		dst = appendKey(dst, "baseFeePerGas")
		dst = appendBigHex(dst, h.BaseFee)
	}
	if h.BlobGasUsed != nil {
		dst = appendKey(dst, "blobGasUsed")
		dst = appendUint64Hex(dst, *h.BlobGasUsed)
	}
	if h.BlockAccessListHash != nil {
		dst = appendKey(dst, "blockAccessListHash")
		dst = appendHash(dst, *h.BlockAccessListHash)
	}
	dst = appendKey(dst, "difficulty")
	dst = appendBigHex(dst, h.Difficulty)
	if h.ExcessBlobGas != nil {
		dst = appendKey(dst, "excessBlobGas")
		dst = appendUint64Hex(dst, *h.ExcessBlobGas)
	}
	dst = appendKey(dst, "extraData")
	dst = appendBytesHex(dst, h.Extra)
	dst = appendKey(dst, "gasLimit")
	dst = appendUint64Hex(dst, h.GasLimit)
	dst = appendKey(dst, "gasUsed")
	dst = appendUint64Hex(dst, h.GasUsed)
	dst = appendKey(dst, "hash")
	dst = appendHashPtr(dst, hash)
	dst = appendKey(dst, "logsBloom")
	dst = appendBytesHex(dst, h.Bloom[:])
	dst = appendKey(dst, "miner")
	if b.Sealed {
		dst = appendAddress(dst, h.Coinbase)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = appendKey(dst, "mixHash")
	dst = appendHash(dst, h.MixDigest)
	dst = appendKey(dst, "nonce")
	if b.Sealed {
		dst = appendBytesHex(dst, h.Nonce[:])
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = appendKey(dst, "number")
	dst = appendBigHex(dst, h.Number)
	if h.ParentBeaconRoot != nil {
		dst = appendKey(dst, "parentBeaconBlockRoot")
		dst = appendHash(dst, *h.ParentBeaconRoot)
	}
	dst = appendKey(dst, "parentHash")
	dst = appendHash(dst, h.ParentHash)
	dst = appendKey(dst, "receiptsRoot")
	dst = appendHash(dst, h.ReceiptHash)
	if h.RequestsHash != nil {
		dst = appendKey(dst, "requestsHash")
		dst = appendHash(dst, *h.RequestsHash)
	}
	dst = appendKey(dst, "sha3Uncles")
	dst = appendHash(dst, h.UncleHash)
	if !headerOnly {
		dst = appendKey(dst, "size")
		dst = appendUint64Hex(dst, b.Size)
	}
	if h.SlotNumber != nil {
		dst = appendKey(dst, "slotNumber")
		dst = appendUint64Hex(dst, *h.SlotNumber)
	}
	dst = appendKey(dst, "stateRoot")
	dst = appendHash(dst, h.Root)
	dst = appendKey(dst, "timestamp")
	dst = appendUint64Hex(dst, h.Time)
	if headerOnly {
		dst = appendKey(dst, "transactionsRoot")
		dst = appendHash(dst, h.TxHash)
		if h.WithdrawalsHash != nil {
			dst = appendKey(dst, "withdrawalsRoot")
			dst = appendHash(dst, *h.WithdrawalsHash)
		}
		return append(dst, '}')
	}
	dst = appendKey(dst, "transactions")
	dst = append(dst, '[')
	var number uint64
	if h.Number != nil {
		number = h.Number.Uint64()
	}
	for i, tx := range b.Txs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if !fullTx {
			dst = appendHash(dst, tx.Hash())
			continue
		}
		loc := txLoc{inBlock: true, blockHash: hash, number: number, time: h.Time, index: uint64(i), baseFee: h.BaseFee}
		var rcpt *types.Receipt
		if i < len(b.Receipts) {
			rcpt = b.Receipts[i]
		}
		dst = s.appendTx(dst, tx, s.sender(b, i), &loc, rcpt)
	}
	dst = append(dst, ']')
	dst = appendKey(dst, "transactionsRoot")
	dst = appendHash(dst, h.TxHash)
	dst = appendKey(dst, "uncles")
	dst = append(dst, '[', ']')
	if h.WithdrawalsHash != nil {
		// L2 blocks carry no withdrawals; go-ethereum prints the (empty) list
		// whenever the header commits to one.
		dst = appendKey(dst, "withdrawals")
		dst = append(dst, '[', ']')
		dst = appendKey(dst, "withdrawalsRoot")
		dst = appendHash(dst, *h.WithdrawalsHash)
	}
	return append(dst, '}')
}

// txLoc is where a transaction is, for its JSON.
type txLoc struct {
	inBlock   bool         // false: waiting in the pool, no position fields
	blockHash *common.Hash // nil while the block is not sealed
	number    uint64
	time      uint64
	index     uint64
	baseFee   *big.Int
}

func isDynamicFee(t uint8) bool {
	return t == types.DynamicFeeTxType || t == types.BlobTxType || t == types.SetCodeTxType
}

func hasAccessList(t uint8) bool {
	return t == types.AccessListTxType || isDynamicFee(t)
}

// appendTx prints tx like go-ethereum's RPCTransaction.
func (s *Server) appendTx(dst []byte, tx *types.Transaction, from common.Address, loc *txLoc, rcpt *types.Receipt) []byte {
	typ := tx.Type()
	v, r, sig := tx.RawSignatureValues()

	dst = append(dst, `{"blockHash":`...)
	if loc.inBlock {
		dst = appendHashPtr(dst, loc.blockHash)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = append(dst, `,"blockNumber":`...)
	if loc.inBlock {
		dst = appendUint64Hex(dst, loc.number)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = append(dst, `,"blockTimestamp":`...)
	if loc.inBlock {
		dst = appendUint64Hex(dst, loc.time)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = append(dst, `,"from":`...)
	dst = appendAddress(dst, from)
	dst = append(dst, `,"gas":`...)
	dst = appendUint64Hex(dst, tx.Gas())
	dst = append(dst, `,"gasPrice":`...)
	if isDynamicFee(typ) {
		if loc.inBlock && loc.baseFee != nil {
			dst = appendBigHex(dst, effectiveGasPrice(tx, loc.baseFee))
		} else {
			dst = appendBigHex(dst, tx.GasFeeCap())
		}
		dst = append(dst, `,"maxFeePerGas":`...)
		dst = appendBigHex(dst, tx.GasFeeCap())
		dst = append(dst, `,"maxPriorityFeePerGas":`...)
		dst = appendBigHex(dst, tx.GasTipCap())
		if typ == types.BlobTxType {
			dst = append(dst, `,"maxFeePerBlobGas":`...)
			dst = appendBigHex(dst, tx.BlobGasFeeCap())
		}
	} else {
		dst = appendBigHex(dst, tx.GasPrice())
	}
	dst = append(dst, `,"hash":`...)
	dst = appendHash(dst, tx.Hash())
	dst = append(dst, `,"input":`...)
	dst = appendBytesHex(dst, tx.Data())
	dst = append(dst, `,"nonce":`...)
	nonce := tx.Nonce()
	if typ == types.DepositTxType && rcpt != nil && rcpt.DepositNonce != nil {
		nonce = *rcpt.DepositNonce
	}
	dst = appendUint64Hex(dst, nonce)
	dst = append(dst, `,"to":`...)
	dst = appendAddressPtr(dst, tx.To())
	dst = append(dst, `,"transactionIndex":`...)
	if loc.inBlock {
		dst = appendUint64Hex(dst, loc.index)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = append(dst, `,"value":`...)
	dst = appendBigHex(dst, tx.Value())
	dst = append(dst, `,"type":`...)
	dst = appendUint64Hex(dst, uint64(typ))
	if hasAccessList(typ) {
		dst = append(dst, `,"accessList":`...)
		dst = appendAccessList(dst, tx.AccessList())
		dst = append(dst, `,"chainId":`...)
		dst = appendBigHex(dst, tx.ChainId())
	} else if typ == types.LegacyTxType {
		if v.Sign() == 0 && r.Sign() == 0 && sig.Sign() == 0 {
			dst = append(dst, `,"chainId":`...)
			dst = appendBigHex(dst, s.b.ChainID())
		} else if id := tx.ChainId(); id.Sign() != 0 {
			dst = append(dst, `,"chainId":`...)
			dst = appendBigHex(dst, id)
		}
	}
	if typ == types.BlobTxType {
		if hashes := tx.BlobHashes(); len(hashes) > 0 {
			dst = append(dst, `,"blobVersionedHashes":[`...)
			for i, h := range hashes {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendHash(dst, h)
			}
			dst = append(dst, ']')
		}
	}
	if typ == types.SetCodeTxType {
		if auths := tx.SetCodeAuthorizations(); len(auths) > 0 {
			if enc, err := json.Marshal(auths); err == nil {
				dst = append(dst, `,"authorizationList":`...)
				dst = append(dst, enc...)
			}
		}
	}
	dst = append(dst, `,"v":`...)
	dst = appendBigHex(dst, v)
	dst = append(dst, `,"r":`...)
	dst = appendBigHex(dst, r)
	dst = append(dst, `,"s":`...)
	dst = appendBigHex(dst, sig)
	if hasAccessList(typ) {
		dst = append(dst, `,"yParity":`...)
		dst = appendUint64Hex(dst, uint64(v.Sign()))
	}
	if typ == types.DepositTxType {
		dst = append(dst, `,"sourceHash":`...)
		dst = appendHash(dst, tx.SourceHash())
		if mint := tx.Mint(); mint != nil {
			dst = append(dst, `,"mint":`...)
			dst = appendBigHex(dst, mint)
		}
		if tx.IsSystemTx() {
			dst = append(dst, `,"isSystemTx":true`...)
		}
		if rcpt != nil && rcpt.DepositNonce != nil && rcpt.DepositReceiptVersion != nil {
			dst = append(dst, `,"depositReceiptVersion":`...)
			dst = appendUint64Hex(dst, *rcpt.DepositReceiptVersion)
		}
	}
	return append(dst, '}')
}

// effectiveGasPrice is min(tipCap + baseFee, feeCap).
func effectiveGasPrice(tx *types.Transaction, baseFee *big.Int) *big.Int {
	fee := new(big.Int).Add(tx.GasTipCap(), baseFee)
	if tx.GasFeeCapIntCmp(fee) < 0 {
		return tx.GasFeeCap()
	}
	return fee
}

func appendAccessList(dst []byte, al types.AccessList) []byte {
	if al == nil {
		return append(dst, jsonNull...)
	}
	dst = append(dst, '[')
	for i, t := range al {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"address":`...)
		dst = appendAddress(dst, t.Address)
		dst = append(dst, `,"storageKeys":`...)
		if t.StorageKeys == nil {
			dst = append(dst, jsonNull...)
		} else {
			dst = append(dst, '[')
			for j, k := range t.StorageKeys {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendHash(dst, k)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendReceipt prints a receipt like go-ethereum's MarshalReceipt.
func appendReceipt(dst []byte, r *types.Receipt, tx *types.Transaction, from common.Address, sealed bool) []byte {
	dst = append(dst, '{')
	if tx.Type() == types.BlobTxType {
		dst = appendKey(dst, "blobGasPrice")
		dst = appendBigHex(dst, r.BlobGasPrice)
		dst = appendKey(dst, "blobGasUsed")
		dst = appendUint64Hex(dst, r.BlobGasUsed)
	}
	dst = appendKey(dst, "blockHash")
	if sealed {
		dst = appendHash(dst, r.BlockHash)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = appendKey(dst, "blockNumber")
	var number uint64
	if r.BlockNumber != nil {
		number = r.BlockNumber.Uint64()
	}
	dst = appendUint64Hex(dst, number)
	dst = appendKey(dst, "contractAddress")
	if r.ContractAddress != (common.Address{}) {
		dst = appendAddress(dst, r.ContractAddress)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = appendKey(dst, "cumulativeGasUsed")
	dst = appendUint64Hex(dst, r.CumulativeGasUsed)
	dst = appendKey(dst, "effectiveGasPrice")
	dst = appendBigHex(dst, r.EffectiveGasPrice)
	dst = appendKey(dst, "from")
	dst = appendAddress(dst, from)
	dst = appendKey(dst, "gasUsed")
	dst = appendUint64Hex(dst, r.GasUsed)
	dst = appendKey(dst, "logs")
	dst = append(dst, '[')
	for i, l := range r.Logs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLog(dst, l, sealed)
	}
	dst = append(dst, ']')
	dst = appendKey(dst, "logsBloom")
	dst = appendBytesHex(dst, r.Bloom[:])
	if len(r.PostState) > 0 {
		dst = appendKey(dst, "root")
		dst = appendBytesHex(dst, r.PostState)
	} else {
		dst = appendKey(dst, "status")
		dst = appendUint64Hex(dst, r.Status)
	}
	dst = appendKey(dst, "to")
	dst = appendAddressPtr(dst, tx.To())
	dst = appendKey(dst, "transactionHash")
	dst = appendHash(dst, tx.Hash())
	dst = appendKey(dst, "transactionIndex")
	dst = appendUint64Hex(dst, uint64(r.TransactionIndex))
	dst = appendKey(dst, "type")
	dst = appendUint64Hex(dst, uint64(tx.Type()))
	return append(dst, '}')
}

// appendLog prints a log like types.Log's JSON; blockHash is null when the block
// is not sealed.
func appendLog(dst []byte, l *types.Log, sealed bool) []byte {
	dst = append(dst, `{"address":`...)
	dst = appendAddress(dst, l.Address)
	dst = append(dst, `,"topics":`...)
	if l.Topics == nil {
		dst = append(dst, jsonNull...)
	} else {
		dst = append(dst, '[')
		for i, t := range l.Topics {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendHash(dst, t)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"data":`...)
	dst = appendBytesHex(dst, l.Data)
	dst = append(dst, `,"blockNumber":`...)
	dst = appendUint64Hex(dst, l.BlockNumber)
	dst = append(dst, `,"transactionHash":`...)
	dst = appendHash(dst, l.TxHash)
	dst = append(dst, `,"transactionIndex":`...)
	dst = appendUint64Hex(dst, uint64(l.TxIndex))
	dst = append(dst, `,"blockHash":`...)
	if sealed {
		dst = appendHash(dst, l.BlockHash)
	} else {
		dst = append(dst, jsonNull...)
	}
	dst = append(dst, `,"blockTimestamp":`...)
	dst = appendUint64Hex(dst, l.BlockTimestamp)
	dst = append(dst, `,"logIndex":`...)
	dst = appendUint64Hex(dst, uint64(l.Index))
	dst = append(dst, `,"removed":`...)
	dst = appendBool(dst, l.Removed)
	return append(dst, '}')
}
