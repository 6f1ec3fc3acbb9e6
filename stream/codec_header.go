package stream

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// A header body, in stream order (C: ctl, D: data, H: a hash code, one C byte
// (hashCode*) and 32 D bytes for a literal):
//
//	H parent hash, H uncle hash, D coinbase (20), H state root, H transactions root,
//	H receipts root, D bloom (256), D difficulty and number (big integers), D gas
//	limit, gas used, time (uvarints), D extra (uvarint length and bytes), H mix
//	digest, D nonce (8), C count k of the optional fields present (0..8), then the
//	first k of: D base fee (big integer), H withdrawals hash, D blob gas used, D
//	excess blob gas (uvarints), H parent beacon root, H requests hash, H block
//	access list hash, D slot number (uvarint); D signature (uvarint length and
//	bytes); D first and last mini-block index of the block (uvarints, 0 and 0
//	when not given: see Encoder.BlockRecord).
//
// Optional fields are go-ethereum's `rlp:"optional"` ones: the RLP of a header
// holds every optional field up to the last one set, a nil one before it as its
// zero value, so decoding the first k as set gives the same RLP, hence the same
// hash.

const (
	hashCodeLiteral = iota
	hashCodeZero
	hashCodeEmptyUncle
	hashCodeEmptyRoot // empty trie: also the empty transactions, receipts and withdrawals roots
	hashCodeEmptyRequests
	hashCodeEnd

	headerOptionals = 8
	headerCost      = 1024
)

var knownHashes = [hashCodeEnd]common.Hash{
	hashCodeEmptyUncle:    types.EmptyUncleHash,
	hashCodeEmptyRoot:     types.EmptyRootHash,
	hashCodeEmptyRequests: types.EmptyRequestsHash,
}

func (e *encState) hash(h *common.Hash) {
	for c := hashCodeZero; c < hashCodeEnd; c++ {
		if *h == knownHashes[c] {
			e.ctlByte(byte(c))
			return
		}
	}
	e.ctlByte(hashCodeLiteral)
	e.dataBytes(h[:])
}

// optHash is hash for an optional field (nil is zero).
func (e *encState) optHash(h *common.Hash) {
	if h == nil {
		h = new(common.Hash)
	}
	e.hash(h)
}

func optUint(x *uint64) uint64 {
	if x == nil {
		return 0
	}
	return *x
}

func (e *encState) encodeHeader(sh *chain.SignedHeader, firstMini, lastMini uint64) error {
	h := sh.Header
	e.hash(&h.ParentHash)
	e.hash(&h.UncleHash)
	e.dataBytes(h.Coinbase[:])
	e.hash(&h.Root)
	e.hash(&h.TxHash)
	e.hash(&h.ReceiptHash)
	e.dataBytes(h.Bloom[:])
	e.dataBig(h.Difficulty)
	e.dataBig(h.Number)
	e.dataUvarint(h.GasLimit)
	e.dataUvarint(h.GasUsed)
	e.dataUvarint(h.Time)
	e.dataLenBytes(h.Extra)
	e.hash(&h.MixDigest)
	e.dataBytes(h.Nonce[:])
	present := [headerOptionals]bool{h.BaseFee != nil, h.WithdrawalsHash != nil, h.BlobGasUsed != nil, h.ExcessBlobGas != nil,
		h.ParentBeaconRoot != nil, h.RequestsHash != nil, h.BlockAccessListHash != nil, h.SlotNumber != nil}
	k := 0
	for i, p := range present {
		if p {
			k = i + 1
		}
	}
	e.ctlByte(byte(k))
	fields := []func(){
		func() { e.dataBig(h.BaseFee) },
		func() { e.optHash(h.WithdrawalsHash) },
		func() { e.dataUvarint(optUint(h.BlobGasUsed)) },
		func() { e.dataUvarint(optUint(h.ExcessBlobGas)) },
		func() { e.optHash(h.ParentBeaconRoot) },
		func() { e.optHash(h.RequestsHash) },
		func() { e.optHash(h.BlockAccessListHash) },
		func() { e.dataUvarint(optUint(h.SlotNumber)) },
	}
	for _, f := range fields[:k] {
		f()
	}
	e.dataLenBytes(sh.Signature)
	e.dataUvarint(firstMini)
	e.dataUvarint(lastMini)
	return e.err
}

func (d *decState) hash(h *common.Hash) error {
	c, err := d.ctl.byte()
	if err != nil {
		return err
	}
	switch {
	case c == hashCodeLiteral:
		b, err := d.data.bytes(32)
		if err != nil {
			return err
		}
		*h = common.Hash(b)
	case c < hashCodeEnd:
		*h = knownHashes[c]
	default:
		return fmt.Errorf("unknown hash code %d", c)
	}
	return nil
}

func (d *decState) optHash() (*common.Hash, error) {
	h := new(common.Hash)
	return h, d.hash(h)
}

func (d *decState) optUint() (*uint64, error) {
	x, err := d.data.uvarint()
	return &x, err
}

func (d *decState) decodeHeader() (*chain.SignedHeader, uint64, uint64, error) {
	if err := d.spend(headerCost); err != nil {
		return nil, 0, 0, err
	}
	h := new(types.Header)
	fixed := func(dst []byte) error {
		b, err := d.data.bytes(uint64(len(dst)))
		copy(dst, b)
		return err
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"parent hash", func() error { return d.hash(&h.ParentHash) }},
		{"uncle hash", func() error { return d.hash(&h.UncleHash) }},
		{"coinbase", func() error { return fixed(h.Coinbase[:]) }},
		{"state root", func() error { return d.hash(&h.Root) }},
		{"transactions root", func() error { return d.hash(&h.TxHash) }},
		{"receipts root", func() error { return d.hash(&h.ReceiptHash) }},
		{"bloom", func() error { return fixed(h.Bloom[:]) }},
		{"difficulty", func() (err error) { h.Difficulty, err = d.dataBig(); return }},
		{"number", func() (err error) { h.Number, err = d.dataBig(); return }},
		{"gas limit", func() (err error) { h.GasLimit, err = d.data.uvarint(); return }},
		{"gas used", func() (err error) { h.GasUsed, err = d.data.uvarint(); return }},
		{"time", func() (err error) { h.Time, err = d.data.uvarint(); return }},
		{"extra", func() error {
			n, err := d.data.uvarint()
			if err != nil {
				return err
			}
			h.Extra, err = d.data.bytes(n)
			return err
		}},
		{"mix digest", func() error { return d.hash(&h.MixDigest) }},
		{"nonce", func() error { return fixed(h.Nonce[:]) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return nil, 0, 0, fmt.Errorf("header %s: %w", s.name, err)
		}
	}
	k, err := d.ctl.byte()
	if err != nil {
		return nil, 0, 0, err
	}
	if k > headerOptionals {
		return nil, 0, 0, fmt.Errorf("%d optional header fields, at most %d", k, headerOptionals)
	}
	optional := []struct {
		name string
		fn   func() error
	}{
		{"base fee", func() (err error) { h.BaseFee, err = d.dataBig(); return }},
		{"withdrawals hash", func() (err error) { h.WithdrawalsHash, err = d.optHash(); return }},
		{"blob gas used", func() (err error) { h.BlobGasUsed, err = d.optUint(); return }},
		{"excess blob gas", func() (err error) { h.ExcessBlobGas, err = d.optUint(); return }},
		{"parent beacon root", func() (err error) { h.ParentBeaconRoot, err = d.optHash(); return }},
		{"requests hash", func() (err error) { h.RequestsHash, err = d.optHash(); return }},
		{"block access list hash", func() (err error) { h.BlockAccessListHash, err = d.optHash(); return }},
		{"slot number", func() (err error) { h.SlotNumber, err = d.optUint(); return }},
	}
	for _, s := range optional[:k] {
		if err := s.fn(); err != nil {
			return nil, 0, 0, fmt.Errorf("header %s: %w", s.name, err)
		}
	}
	n, err := d.data.uvarint()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("signature: %w", err)
	}
	sig, err := d.data.bytes(n)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("signature: %w", err)
	}
	first, err := d.data.uvarint()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("first mini-block: %w", err)
	}
	last, err := d.data.uvarint()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("last mini-block: %w", err)
	}
	if err := d.finish(); err != nil {
		return nil, 0, 0, err
	}
	return &chain.SignedHeader{Header: h, Signature: sig}, first, last, nil
}
