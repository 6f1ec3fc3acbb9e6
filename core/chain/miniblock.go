package chain

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
)

// BlockEnv is what an EVM block fixes when it opens: every mini-block of the block
// carries it so that any one of them can be executed or checked alone.
type BlockEnv struct {
	Number   uint64
	Time     uint64 // seconds
	BaseFee  *big.Int
	GasLimit uint64
	Coinbase common.Address
	Random   common.Hash // PREVRANDAO
}

// Receipt is the stored part of a transaction receipt; everything else (bloom,
// hashes, indices, contract address, effective gas price) is derived.
type Receipt struct {
	Status            uint64
	CumulativeGasUsed uint64 // within the EVM block
	GasUsed           uint64
	Logs              []*types.Log
}

// MiniBlock is a ~10 ms slice of an EVM block: its transactions, their receipts and
// the state diff they produced, signed by the sequencer.
type MiniBlock struct {
	Index        uint64 // global, from 1
	IndexInBlock uint32 // from 0
	TimestampMs  uint64
	Env          BlockEnv
	// BeaconRootCall is set on a block's first mini-block: the EIP-4788 system call
	// ran before its transactions.
	BeaconRootCall bool
	// ParentHashCall marks the mini-block before whose transactions the EIP-2935
	// system call stored the parent block hash (see docs/ARCHITECTURE.md: the hash
	// is known only once the parent's root is computed, off the hot path).
	ParentHashCall bool
	// ParentHash is the hash the EIP-2935 call stored, when ParentHashCall is set.
	ParentHash common.Hash
	Txs        []*types.Transaction
	// Senders are the recovered senders of Txs, covered by the signature so that
	// readers of a signed mini-block need not recover them again.
	Senders  []common.Address
	Receipts []*Receipt
	Diff     *StateDiff
	// Signature is the sequencer's secp256k1 signature over SigningHash.
	Signature []byte
}

type miniBlockRLP struct {
	Index        uint64
	IndexInBlock uint32
	TimestampMs  uint64
	Number       uint64
	Time         uint64
	BaseFee      *big.Int
	GasLimit     uint64
	Coinbase     common.Address
	Random       common.Hash
	Flags        uint8
	ParentHash   common.Hash
	Txs          [][]byte
	Senders      []common.Address
	Receipts     []*Receipt
	Diff         []accountDiffRLP
	Signature    []byte
}

const (
	miniBlockVersion = 1
	mbFlagBeacon     = 1 << 0
	mbFlagParentHash = 1 << 1
)

// ErrBadMiniBlock is returned for a mini-block that fails to decode or validate.
var ErrBadMiniBlock = errors.New("bad mini-block")

func (m *MiniBlock) toRLP(withSig bool) (*miniBlockRLP, error) {
	enc := &miniBlockRLP{
		Index: m.Index, IndexInBlock: m.IndexInBlock, TimestampMs: m.TimestampMs,
		Number: m.Env.Number, Time: m.Env.Time, BaseFee: m.Env.BaseFee, GasLimit: m.Env.GasLimit,
		Coinbase: m.Env.Coinbase, Random: m.Env.Random, ParentHash: m.ParentHash,
		Txs: make([][]byte, len(m.Txs)), Senders: m.Senders, Receipts: m.Receipts,
	}
	if m.BeaconRootCall {
		enc.Flags |= mbFlagBeacon
	}
	if m.ParentHashCall {
		enc.Flags |= mbFlagParentHash
	}
	for i, tx := range m.Txs {
		b, err := tx.MarshalBinary()
		if err != nil {
			return nil, err
		}
		enc.Txs[i] = b
	}
	if m.Diff != nil {
		enc.Diff = m.Diff.toRLP()
	}
	if withSig {
		enc.Signature = m.Signature
	}
	return enc, nil
}

// SigningHash is what the sequencer signs: keccak256 over a domain tag and the
// encoding without the signature.
func (m *MiniBlock) SigningHash() (common.Hash, error) {
	enc, err := m.toRLP(false)
	if err != nil {
		return common.Hash{}, err
	}
	body, err := rlp.EncodeToBytes(enc)
	if err != nil {
		return common.Hash{}, err
	}
	return crypto.Keccak256Hash([]byte("kestrel/miniblock/v1"), body), nil
}

// EncodeSigned returns what MarshalBinary and SigningHash return, encoding the
// mini-block once: the signing encoding is the stored one with an empty
// signature, so it is cut from it instead of encoded again (a replica needs
// both for every mini-block it applies).
func (m *MiniBlock) EncodeSigned() ([]byte, common.Hash, error) {
	enc, err := m.toRLP(true)
	if err != nil {
		return nil, common.Hash{}, err
	}
	body, err := rlp.EncodeToBytes(enc)
	if err != nil {
		return nil, common.Hash{}, err
	}
	sigItem, err := rlp.EncodeToBytes(m.Signature)
	if err != nil {
		return nil, common.Hash{}, err
	}
	_, payload, _, err := rlp.Split(body)
	if err != nil {
		return nil, common.Hash{}, fmt.Errorf("mini-block encoding: %w", err)
	}
	if !bytes.HasSuffix(payload, sigItem) {
		return nil, common.Hash{}, errors.New("mini-block encoding does not end with its signature")
	}
	unsigned := payload[:len(payload)-len(sigItem)]
	n := len(unsigned) + 1 // the empty signature, 0x80
	var head []byte
	if n < 56 {
		head = []byte{0xc0 + byte(n)}
	} else {
		size := binary.BigEndian.AppendUint64(nil, uint64(n))
		for len(size) > 1 && size[0] == 0 {
			size = size[1:]
		}
		head = append([]byte{0xf7 + byte(len(size))}, size...)
	}
	h := crypto.Keccak256Hash([]byte("kestrel/miniblock/v1"), head, unsigned, []byte{0x80})
	return sealChecksum(append([]byte{miniBlockVersion}, body...)), h, nil
}

// SignerAndEncoding recovers the signer and returns MarshalBinary's bytes,
// encoding the mini-block once (see EncodeSigned).
func (m *MiniBlock) SignerAndEncoding() (common.Address, []byte, error) {
	raw, h, err := m.EncodeSigned()
	if err != nil {
		return common.Address{}, nil, err
	}
	signer, err := recoverSigner(h, m.Signature)
	return signer, raw, err
}

// Sign sets the signature with the sequencer key.
func (m *MiniBlock) Sign(key *ecdsa.PrivateKey) error {
	h, err := m.SigningHash()
	if err != nil {
		return err
	}
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return err
	}
	m.Signature = sig
	return nil
}

// Signer recovers the address that signed the mini-block.
func (m *MiniBlock) Signer() (common.Address, error) {
	h, err := m.SigningHash()
	if err != nil {
		return common.Address{}, err
	}
	return recoverSigner(h, m.Signature)
}

func recoverSigner(h common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != crypto.SignatureLength {
		return common.Address{}, errors.New("signature must be 65 bytes")
	}
	pub, err := crypto.SigToPub(h[:], sig)
	if err != nil {
		return common.Address{}, err
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// MarshalBinary encodes the mini-block: version byte, RLP, CRC-32C.
func (m *MiniBlock) MarshalBinary() ([]byte, error) {
	enc, err := m.toRLP(true)
	if err != nil {
		return nil, err
	}
	body, err := rlp.EncodeToBytes(enc)
	if err != nil {
		return nil, err
	}
	return sealChecksum(append([]byte{miniBlockVersion}, body...)), nil
}

// UnmarshalBinary decodes a mini-block written by MarshalBinary and checks its
// internal consistency (not its signature: see Signer).
func (m *MiniBlock) UnmarshalBinary(data []byte) error {
	body, err := openChecksum(data, miniBlockVersion)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMiniBlock, err)
	}
	var enc miniBlockRLP
	if err := rlp.DecodeBytes(body, &enc); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMiniBlock, err)
	}
	if enc.Flags&^(mbFlagBeacon|mbFlagParentHash) != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrBadMiniBlock, enc.Flags)
	}
	if len(enc.Txs) != len(enc.Receipts) || len(enc.Txs) != len(enc.Senders) {
		return fmt.Errorf("%w: %d transactions, %d senders, %d receipts", ErrBadMiniBlock, len(enc.Txs), len(enc.Senders), len(enc.Receipts))
	}
	if enc.BaseFee == nil {
		return fmt.Errorf("%w: missing base fee", ErrBadMiniBlock)
	}
	out := MiniBlock{
		Index: enc.Index, IndexInBlock: enc.IndexInBlock, TimestampMs: enc.TimestampMs,
		Env:            BlockEnv{Number: enc.Number, Time: enc.Time, BaseFee: enc.BaseFee, GasLimit: enc.GasLimit, Coinbase: enc.Coinbase, Random: enc.Random},
		BeaconRootCall: enc.Flags&mbFlagBeacon != 0, ParentHashCall: enc.Flags&mbFlagParentHash != 0,
		ParentHash: enc.ParentHash, Senders: enc.Senders, Receipts: enc.Receipts, Signature: enc.Signature,
		Txs: make([]*types.Transaction, len(enc.Txs)),
	}
	for i, raw := range enc.Txs {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw); err != nil {
			return fmt.Errorf("%w: transaction %d: %v", ErrBadMiniBlock, i, err)
		}
		out.Txs[i] = tx
	}
	for i, r := range out.Receipts {
		if r == nil {
			return fmt.Errorf("%w: receipt %d missing", ErrBadMiniBlock, i)
		}
	}
	diff, err := diffFromRLP(enc.Diff)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMiniBlock, err)
	}
	out.Diff = diff
	*m = out
	return nil
}

// GasUsed is the cumulative gas of the block after this mini-block.
func (m *MiniBlock) GasUsed() uint64 {
	if len(m.Receipts) == 0 {
		return 0
	}
	return m.Receipts[len(m.Receipts)-1].CumulativeGasUsed
}

// RandomFor is the PREVRANDAO value of a block: deterministic, as on every
// single-sequencer L2 (contracts must not use it as a secret).
func RandomFor(chainID, number uint64) common.Hash {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], chainID)
	binary.BigEndian.PutUint64(buf[8:], number)
	return crypto.Keccak256Hash([]byte("kestrel/prevrandao"), buf[:])
}

// FullReceipts derives go-ethereum receipts for a block's transactions: bloom,
// hashes, indices, contract addresses, effective gas price and log positions.
// blockHash is zero while the block is not sealed.
func FullReceipts(env BlockEnv, blockHash common.Hash, txs []*types.Transaction, senders []common.Address, stored []*Receipt) []*types.Receipt {
	return DeriveReceipts(env, blockHash, txs, senders, stored, 0, len(txs))
}

// DeriveReceipts derives the receipts of txs[from:to] of a block (see
// FullReceipts) without deriving the others.
func DeriveReceipts(env BlockEnv, blockHash common.Hash, txs []*types.Transaction, senders []common.Address, stored []*Receipt, from, to int) []*types.Receipt {
	var logIndex uint
	for _, s := range stored[:from] {
		logIndex += uint(len(s.Logs))
	}
	out := make([]*types.Receipt, 0, to-from)
	for i := from; i < to; i++ {
		tx, s := txs[i], stored[i]
		r := &types.Receipt{
			Type: tx.Type(), Status: s.Status, CumulativeGasUsed: s.CumulativeGasUsed, GasUsed: s.GasUsed,
			TxHash: tx.Hash(), BlockHash: blockHash, BlockNumber: new(big.Int).SetUint64(env.Number),
			TransactionIndex: uint(i), EffectiveGasPrice: effectiveGasPrice(tx, env.BaseFee),
		}
		if tx.To() == nil {
			r.ContractAddress = crypto.CreateAddress(senders[i], tx.Nonce())
		}
		r.Logs = make([]*types.Log, len(s.Logs))
		for j, l := range s.Logs {
			cp := *l
			cp.BlockNumber, cp.BlockHash, cp.BlockTimestamp = env.Number, blockHash, env.Time
			cp.TxHash, cp.TxIndex, cp.Index = r.TxHash, uint(i), logIndex
			logIndex++
			r.Logs[j] = &cp
		}
		r.Bloom = types.CreateBloom(r)
		out = append(out, r)
	}
	return out
}

func effectiveGasPrice(tx *types.Transaction, baseFee *big.Int) *big.Int {
	tip := tx.EffectiveGasTipValue(baseFee)
	return tip.Add(tip, baseFee)
}

// SealHeader builds the Ethereum header of a block from its environment, its
// transactions and receipts, the parent hash and the post-state root.
func SealHeader(env BlockEnv, parent common.Hash, root common.Hash, txs []*types.Transaction, receipts []*types.Receipt) *types.Header {
	var gasUsed uint64
	if n := len(receipts); n > 0 {
		gasUsed = receipts[n-1].CumulativeGasUsed
	}
	return SealHeaderRoots(env, parent, root, types.DeriveSha(types.Transactions(txs), trie.NewStackTrie(nil)),
		types.DeriveSha(types.Receipts(receipts), trie.NewStackTrie(nil)), types.MergeBloom(receipts), gasUsed)
}

// SealHeaderRoots builds a header from already computed roots and bloom: the
// fields every Prague header has, with no withdrawals, blobs or requests.
func SealHeaderRoots(env BlockEnv, parent, root, txRoot, receiptRoot common.Hash, bloom types.Bloom, gasUsed uint64) *types.Header {
	zero := uint64(0)
	beacon := common.Hash{}
	withdrawals := types.EmptyWithdrawalsHash
	requests := types.EmptyRequestsHash
	return &types.Header{
		ParentHash: parent, UncleHash: types.EmptyUncleHash, Coinbase: env.Coinbase, Root: root,
		TxHash: txRoot, ReceiptHash: receiptRoot, Bloom: bloom,
		Difficulty: new(big.Int), Number: new(big.Int).SetUint64(env.Number), GasLimit: env.GasLimit,
		GasUsed: gasUsed, Time: env.Time, MixDigest: env.Random, BaseFee: new(big.Int).Set(env.BaseFee),
		WithdrawalsHash: &withdrawals, BlobGasUsed: &zero, ExcessBlobGas: &zero, ParentBeaconRoot: &beacon,
		RequestsHash: &requests,
	}
}

// SignedHeader is a sealed header with the sequencer's signature over its hash.
type SignedHeader struct {
	Header    *types.Header
	Signature []byte
}

// HeaderSigningHash is what the sequencer signs for a header.
func HeaderSigningHash(h *types.Header) common.Hash {
	hash := h.Hash()
	return crypto.Keccak256Hash([]byte("kestrel/header/v1"), hash[:])
}

// SignHeader signs a sealed header.
func SignHeader(h *types.Header, key *ecdsa.PrivateKey) (*SignedHeader, error) {
	sh := HeaderSigningHash(h)
	sig, err := crypto.Sign(sh[:], key)
	if err != nil {
		return nil, err
	}
	return &SignedHeader{Header: h, Signature: sig}, nil
}

// Signer recovers the address that signed the header.
func (s *SignedHeader) Signer() (common.Address, error) {
	return recoverSigner(HeaderSigningHash(s.Header), s.Signature)
}
