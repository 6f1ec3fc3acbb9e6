package stream

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// A mini-block body, in stream order (ctl: C, data: D, address code: A, word: W):
//
//	C flags: 1 beacon-root call, 2 parent-hash call, 4 parent hash non-zero,
//	  8 cumulative gas written per receipt
//	D index, timestamp ms, number, time, gas limit (uvarints); C index in block;
//	D base fee (big integer); A coinbase; D random (32); D parent hash (32, if flag 4)
//	C transaction count; D cumulative gas before the first (unless flag 8)
//	per transaction: the transaction, then its receipt
//	the diff
//	D signature (uvarint length and bytes)
//
// A transaction starts with a C kind byte: bits 0-2 the type (0, 1, 2, 4, or 7 for
// any other type, written whole: A sender, D uvarint length and the canonical
// bytes), bit 3 set when the nonce is the sender's previous nonce plus one,
// bits 4-5 the signature form (txSig*). Then A sender, C field flags (txF*), D
// nonce (unless bit 3), the changed registers (D chain id, gas price or tip, fee
// cap as big integers, gas as uvarint), A to (unless a creation), the value (W, or
// D big integer above 256 bits), the calldata (C uvarint n<<1|1 and n raw D bytes,
// or C uvarint n<<1, the 4-byte selector in C and n words), the access list (C
// count; per tuple A address, C key count, keys W), the authorizations of a
// set-code transaction (C count; per entry C mode (authChain* | authCompact), A
// address, D nonce, D chain id if explicit, D signature: compact 64 bytes, or
// y-parity byte, r and s as 32 bytes each), and the signature.
//
// A receipt: C status, C gas used, D cumulative gas (only with flag 8), C log
// count; per log A address, C topic count, topics W, data coded as calldata
// without a selector.
//
// The diff: C account count; per account its address as C uvarint g (g = 0: a
// new address, 20 D bytes; else the dictionary entry g after the previous
// account's), C account flags (acct*), D nonce (if explicit), D code-hash
// dictionary index or 32-byte hash (per flags; the hashes written out and those
// of the code written out form the code-hash dictionary), D code (uvarint length
// and bytes) when present, its hash then being its keccak256, W balance when
// non-zero. Accounts come in dictionary order,
// new ones last, not in address order: the decoder sorts them. Then the storage
// of each account, in the same order: C slot count n, and if n > 0 C the count
// of derived slots; per derived slot C uvarint index gap (its address's dictionary
// index minus the previous derived slot's, from 0) and C mapping slot i — its key
// is keccak256(pad32(address) ++ pad32(i)), as for a Solidity mapping entry
// (ERC-20 balances) — and W value, sorted by (address index, i); then per other
// slot W key and W value in key order. The decoder sorts the slots by key.

// Flags, forms and modes of the mini-block body.
const (
	mbBeacon          = 1 << 0
	mbParentHashCall  = 1 << 1
	mbParentHash      = 1 << 2
	mbExplicitCumGas  = 1 << 3
	mbFlagsKnown      = mbBeacon | mbParentHashCall | mbParentHash | mbExplicitCumGas
	txKindRaw         = 7
	txKindNonceSeq    = 1 << 3
	txKindSigShift    = 4
	txKindKnownBits   = 0x3f
	txSigCompact      = 0 // typed: v = y parity; legacy: v = 27 + parity; r, s|parity<<255 as 64 bytes
	txSigCompact155   = 1 // legacy only: v = 35 + 2 * chain id + parity
	txSigExplicit     = 2 // v, r, s as big integers
	txFChain          = 1 << 0
	txFPrice          = 1 << 1
	txFFee            = 1 << 2
	txFGas            = 1 << 3
	txFCreate         = 1 << 4
	txFValue          = 1 << 5
	txFValueBig       = 1 << 6
	txFAccessList     = 1 << 7
	authChainSame     = 0 // the transaction's chain id
	authChainZero     = 1
	authChainExplicit = 2
	authCompact       = 1 << 2
	acctDeleted       = 1 << 0
	acctReset         = 1 << 1
	acctHasCode       = 1 << 2
	acctNonceShift    = 3 // 2 bits: nonceZero, nonceNext, nonceExplicit
	acctHashShift     = 5 // 2 bits: hashEmptyCode, hashZero, hashDict, hashLiteral
	acctBalance       = 1 << 7
	nonceZero         = 0
	nonceNext         = 1 // the sender's last transaction nonce in this message plus one
	nonceExplicit     = 2
	hashEmptyCode     = 0
	hashZero          = 1
	hashDict          = 2
	hashLiteral       = 3
)

// Decoded-size charges for the values a few ctl bytes can produce.
const (
	txCost      = 256
	receiptCost = 64
	logCost     = 96
	accountCost = 160
	slotCost    = 64
	tupleCost   = 64
	authCost    = 160
)

func (e *Encoder) encodeMiniBlock(mb *chain.MiniBlock) error {
	if len(mb.Txs) != len(mb.Senders) || len(mb.Txs) != len(mb.Receipts) {
		return fmt.Errorf("%d transactions, %d senders, %d receipts", len(mb.Txs), len(mb.Senders), len(mb.Receipts))
	}
	w := &e.w
	var flags byte
	if mb.BeaconRootCall {
		flags |= mbBeacon
	}
	if mb.ParentHashCall {
		flags |= mbParentHashCall
	}
	if mb.ParentHash != (common.Hash{}) {
		flags |= mbParentHash
	}
	base, derived := cumulativeBase(mb.Receipts)
	if !derived {
		flags |= mbExplicitCumGas
	}
	w.ctlByte(flags)
	w.dataUvarint(mb.Index)
	w.dataUvarint(mb.TimestampMs)
	w.dataUvarint(mb.Env.Number)
	w.dataUvarint(mb.Env.Time)
	w.dataUvarint(mb.Env.GasLimit)
	w.ctlUvarint(uint64(mb.IndexInBlock))
	w.dataBig(mb.Env.BaseFee)
	w.addr(mb.Env.Coinbase)
	w.dataBytes(mb.Env.Random[:])
	if flags&mbParentHash != 0 {
		w.dataBytes(mb.ParentHash[:])
	}
	w.ctlUvarint(uint64(len(mb.Txs)))
	if derived && len(mb.Txs) > 0 {
		w.dataUvarint(base)
	}
	for i, tx := range mb.Txs {
		if tx == nil {
			return fmt.Errorf("transaction %d is nil", i)
		}
		if err := w.encodeTx(tx, mb.Senders[i]); err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		r := mb.Receipts[i]
		if r == nil {
			return fmt.Errorf("receipt %d is nil", i)
		}
		if err := w.encodeReceipt(r, !derived); err != nil {
			return fmt.Errorf("receipt %d: %w", i, err)
		}
	}
	if err := e.encodeDiff(mb.Diff, len(mb.Txs)); err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	w.dataLenBytes(mb.Signature)
	return w.err
}

// cumulativeBase finds the base such that every receipt's cumulative gas is the
// base plus the running sum of gas used (with uint64 wrap-around, as the decoder
// computes it), if there is one.
func cumulativeBase(rs []*chain.Receipt) (uint64, bool) {
	if len(rs) == 0 || rs[0] == nil {
		return 0, true
	}
	base := rs[0].CumulativeGasUsed - rs[0].GasUsed
	sum := base
	for _, r := range rs {
		if r == nil {
			return 0, false
		}
		sum += r.GasUsed
		if sum != r.CumulativeGasUsed {
			return 0, false
		}
	}
	return base, true
}

// sigForm classifies a signature (see txSig*): for the compact forms it returns
// the y parity and, for txSigCompact155, the chain id.
func sigForm(typ uint8, v, r, s *big.Int) (form int, parity byte, chainID *big.Int) {
	if r.Sign() < 0 || r.BitLen() > 256 || s.Sign() < 0 || s.BitLen() > 255 || v.Sign() < 0 {
		return txSigExplicit, 0, nil
	}
	if typ != types.LegacyTxType {
		if v.BitLen() <= 1 {
			return txSigCompact, byte(v.Uint64()), nil
		}
		return txSigExplicit, 0, nil
	}
	if v.IsUint64() && (v.Uint64() == 27 || v.Uint64() == 28) {
		return txSigCompact, byte(v.Uint64() - 27), nil
	}
	if v.Cmp(big35) >= 0 {
		t := new(big.Int).Sub(v, big35)
		return txSigCompact155, byte(t.Bit(0)), t.Rsh(t, 1)
	}
	return txSigExplicit, 0, nil
}

var big35 = big.NewInt(35)

// compactSig appends r and s with the parity in the top bit of s.
func (e *encState) compactSig(r, s *big.Int, parity byte) {
	e.dataFixed32(r)
	e.dataFixed32(s)
	e.data[len(e.data)-32] |= parity << 7
}

func (e *encState) encodeTx(tx *types.Transaction, sender common.Address) error {
	typ := tx.Type()
	switch typ {
	case types.LegacyTxType, types.AccessListTxType, types.DynamicFeeTxType, types.SetCodeTxType:
	default:
		raw, err := tx.MarshalBinary()
		if err != nil {
			return err
		}
		e.ctlByte(txKindRaw)
		idx := e.addr(sender)
		e.dataLenBytes(raw)
		e.lastNonce[idx] = tx.Nonce()
		return nil
	}
	nonce := tx.Nonce()
	kind := typ
	if idx, ok := e.addrIdx[sender]; ok {
		if last, ok := e.lastNonce[idx]; ok && last+1 == nonce {
			kind |= txKindNonceSeq
		}
	}
	v, r, s := tx.RawSignatureValues()
	form, parity, chainID := sigForm(typ, v, r, s)
	kind |= byte(form) << txKindSigShift
	e.ctlByte(kind)
	sidx := e.addr(sender)

	var price, fee *big.Int
	switch typ {
	case types.LegacyTxType, types.AccessListTxType:
		price = tx.GasPrice()
	default:
		price, fee = tx.GasTipCap(), tx.GasFeeCap()
	}
	if typ != types.LegacyTxType {
		chainID = tx.ChainId()
	}
	var flags byte
	if chainID != nil && chainID.Cmp(&e.regs.chain) != 0 {
		flags |= txFChain
	}
	if price.Cmp(&e.regs.price) != 0 {
		flags |= txFPrice
	}
	if fee != nil && fee.Cmp(&e.regs.fee) != 0 {
		flags |= txFFee
	}
	if tx.Gas() != e.regs.gas {
		flags |= txFGas
	}
	to := tx.To()
	if to == nil {
		flags |= txFCreate
	}
	value := tx.Value()
	if value.Sign() != 0 {
		if value.Sign() > 0 && value.BitLen() <= 256 {
			flags |= txFValue
		} else {
			flags |= txFValueBig
		}
	}
	al := tx.AccessList()
	if typ != types.LegacyTxType && len(al) > 0 {
		flags |= txFAccessList
	}
	e.ctlByte(flags)
	if kind&txKindNonceSeq == 0 {
		e.dataUvarint(nonce)
	}
	if flags&txFChain != 0 {
		e.dataBig(chainID)
		e.regs.chain.Set(chainID)
	}
	if flags&txFPrice != 0 {
		e.dataBig(price)
		e.regs.price.Set(price)
	}
	if flags&txFFee != 0 {
		e.dataBig(fee)
		e.regs.fee.Set(fee)
	}
	if flags&txFGas != 0 {
		e.regs.gas = tx.Gas()
		e.dataUvarint(e.regs.gas)
	}
	if to != nil {
		e.addr(*to)
	}
	switch {
	case flags&txFValue != 0:
		var w common.Hash
		value.FillBytes(w[:])
		e.word(&w)
	case flags&txFValueBig != 0:
		e.dataBig(value)
	}
	e.calldata(tx.Data(), to != nil)
	if flags&txFAccessList != 0 {
		e.ctlUvarint(uint64(len(al)))
		for _, t := range al {
			e.addr(t.Address)
			e.ctlUvarint(uint64(len(t.StorageKeys)))
			for j := range t.StorageKeys {
				e.word(&t.StorageKeys[j])
			}
		}
	}
	if typ == types.SetCodeTxType {
		e.encodeAuths(tx.SetCodeAuthorizations(), chainID)
	}
	switch form {
	case txSigExplicit:
		e.dataBig(v)
		e.dataBig(r)
		e.dataBig(s)
	default:
		e.compactSig(r, s, parity)
	}
	e.lastNonce[sidx] = nonce
	return e.err
}

func (e *encState) encodeAuths(auths []types.SetCodeAuthorization, txChain *big.Int) {
	e.ctlUvarint(uint64(len(auths)))
	var chain uint256.Int
	chain.SetFromBig(txChain)
	for i := range auths {
		a := &auths[i]
		var mode byte
		switch {
		case a.ChainID.Eq(&chain):
			mode = authChainSame
		case a.ChainID.IsZero():
			mode = authChainZero
		default:
			mode = authChainExplicit
		}
		compact := a.V <= 1 && a.S.BitLen() <= 255
		if compact {
			mode |= authCompact
		}
		e.ctlByte(mode)
		e.addr(a.Address)
		e.dataUvarint(a.Nonce)
		if mode&3 == authChainExplicit {
			e.dataU256(&a.ChainID)
		}
		r, s := a.R.Bytes32(), a.S.Bytes32()
		if compact {
			s[0] |= a.V << 7
		} else {
			e.dataBytes([]byte{a.V})
		}
		e.dataBytes(r[:])
		e.dataBytes(s[:])
	}
}

// calldata writes input data: as a selector and words when it has that shape
// and goes to a contract, raw otherwise.
func (e *encState) calldata(b []byte, call bool) {
	if !call || len(b) < 4 || (len(b)-4)%32 != 0 {
		e.ctlLen(len(b), true)
		e.dataBytes(b)
		return
	}
	n := (len(b) - 4) / 32
	e.ctlLen(n, false)
	e.ctl = append(e.ctl, b[:4]...)
	for j := range n {
		e.word((*common.Hash)(b[4+32*j : 4+32*j+32]))
	}
}

// logData writes log data as words when its length is a multiple of 32.
func (e *encState) logData(b []byte) {
	if len(b)%32 != 0 {
		e.ctlLen(len(b), true)
		e.dataBytes(b)
		return
	}
	n := len(b) / 32
	e.ctlLen(n, false)
	for j := range n {
		e.word((*common.Hash)(b[32*j : 32*j+32]))
	}
}

func (e *encState) encodeReceipt(r *chain.Receipt, explicitCum bool) error {
	e.ctlUvarint(r.Status)
	e.ctlUvarint(r.GasUsed)
	if explicitCum {
		e.dataUvarint(r.CumulativeGasUsed)
	}
	e.ctlUvarint(uint64(len(r.Logs)))
	for j, l := range r.Logs {
		if l == nil {
			return fmt.Errorf("log %d is nil", j)
		}
		e.addr(l.Address)
		e.ctlUvarint(uint64(len(l.Topics)))
		for k := range l.Topics {
			e.word(&l.Topics[k])
		}
		e.logData(l.Data)
	}
	return nil
}

// acctRef is an account of the diff with its address's dictionary index.
type acctRef struct {
	pos int   // in the diff
	idx int32 // in the address dictionary, -1 while not there
}

func (e *Encoder) encodeDiff(d *chain.StateDiff, ntx int) error {
	w := &e.w
	var accts []chain.AccountDiff
	if d != nil {
		if err := d.Validate(); err != nil {
			return err
		}
		accts = d.Accounts
	}
	w.ctlUvarint(uint64(len(accts)))
	order := e.order[:0]
	for i := range accts {
		idx, ok := w.addrIdx[accts[i].Address]
		if !ok {
			idx = -1
		}
		order = append(order, acctRef{pos: i, idx: idx})
	}
	// Known addresses by dictionary index, then the new ones in diff (address)
	// order.
	slices.SortStableFunc(order, func(a, b acctRef) int {
		switch {
		case a.idx < 0 && b.idx < 0:
			return 0
		case a.idx < 0:
			return 1
		case b.idx < 0:
			return -1
		}
		return cmp.Compare(a.idx, b.idx)
	})
	prev := int32(-1)
	for k := range order {
		o := &order[k]
		a := &accts[o.pos]
		if o.idx < 0 {
			w.ctlByte(0)
			w.dataBytes(a.Address[:])
			o.idx = w.addAddr(a.Address)
		} else {
			w.ctlUvarint(uint64(o.idx - prev))
		}
		prev = o.idx
		w.encodeAccount(a, o.idx)
	}
	e.order = order
	e.derived = e.learner.derive(accts, order, w.addrs, ntx, e.derived[:0])
	dv := e.derived
	for _, o := range order {
		a := &accts[o.pos]
		w.ctlUvarint(uint64(len(a.Storage)))
		if len(a.Storage) == 0 {
			continue
		}
		// e.derived holds the account's derived slots, grouped by account in
		// order and sorted by (address index, i).
		n := 0
		for n < len(dv) && dv[n].acct == int32(o.pos) {
			n++
		}
		mine := dv[:n]
		dv = dv[n:]
		w.ctlUvarint(uint64(n))
		prevIdx := int32(0)
		for _, s := range mine {
			w.ctlUvarint(uint64(s.addr - prevIdx))
			w.ctlUvarint(uint64(s.index))
			w.word(&a.Storage[s.slot].Value)
			prevIdx = s.addr
		}
		// The others, in key order.
		mask := e.mask[:0]
		for range a.Storage {
			mask = append(mask, false)
		}
		for _, s := range mine {
			mask[s.slot] = true
		}
		e.mask = mask
		for j := range a.Storage {
			if !mask[j] {
				w.word(&a.Storage[j].Key)
				w.word(&a.Storage[j].Value)
			}
		}
	}
	return nil
}

func (e *encState) encodeAccount(a *chain.AccountDiff, idx int32) {
	var f byte
	if a.Deleted {
		f |= acctDeleted
	}
	if a.StorageReset {
		f |= acctReset
	}
	nonceMode := nonceExplicit
	if a.Nonce == 0 {
		nonceMode = nonceZero
	} else if last, ok := e.lastNonce[idx]; ok && last+1 == a.Nonce {
		nonceMode = nonceNext
	}
	f |= byte(nonceMode) << acctNonceShift
	hashMode := hashLiteral
	var hashIdx int32
	if a.Code != nil {
		f |= acctHasCode
		hashMode = hashEmptyCode // the hash is the code's
	} else if a.CodeHash == types.EmptyCodeHash {
		hashMode = hashEmptyCode
	} else if a.CodeHash == (common.Hash{}) {
		hashMode = hashZero
	} else if i, ok := e.codeIdx[a.CodeHash]; ok {
		hashMode, hashIdx = hashDict, i
	}
	f |= byte(hashMode) << acctHashShift
	if !a.Balance.IsZero() {
		f |= acctBalance
	}
	e.ctlByte(f)
	if nonceMode == nonceExplicit {
		e.dataUvarint(a.Nonce)
	}
	switch {
	case a.Code != nil:
		e.dataLenBytes(a.Code)
		e.addCodeHash(a.CodeHash)
	case hashMode == hashDict:
		e.dataUvarint(uint64(hashIdx))
	case hashMode == hashLiteral:
		e.dataBytes(a.CodeHash[:])
		e.addCodeHash(a.CodeHash)
	}
	if !a.Balance.IsZero() {
		e.wordU256(&a.Balance)
	}
}

func (e *encState) addCodeHash(h common.Hash) {
	e.codeIdx[h] = int32(len(e.codeHashes))
	e.codeHashes = append(e.codeHashes, h)
}

func (d *decState) decodeMiniBlock() (*chain.MiniBlock, error) {
	flags, err := d.ctl.byte()
	if err != nil {
		return nil, err
	}
	if flags&^mbFlagsKnown != 0 {
		return nil, fmt.Errorf("unknown mini-block flags %#x", flags)
	}
	mb := &chain.MiniBlock{BeaconRootCall: flags&mbBeacon != 0, ParentHashCall: flags&mbParentHashCall != 0}
	for _, p := range []*uint64{&mb.Index, &mb.TimestampMs, &mb.Env.Number, &mb.Env.Time, &mb.Env.GasLimit} {
		if *p, err = d.data.uvarint(); err != nil {
			return nil, err
		}
	}
	ib, err := d.ctl.uvarint()
	if err != nil {
		return nil, err
	}
	if ib > uint64(^uint32(0)) {
		return nil, fmt.Errorf("index in block %d overflows", ib)
	}
	mb.IndexInBlock = uint32(ib)
	if mb.Env.BaseFee, err = d.dataBig(); err != nil {
		return nil, fmt.Errorf("base fee: %w", err)
	}
	if mb.Env.Coinbase, _, err = d.addr(); err != nil {
		return nil, fmt.Errorf("coinbase: %w", err)
	}
	b, err := d.data.bytes(32)
	if err != nil {
		return nil, err
	}
	mb.Env.Random = common.Hash(b)
	if flags&mbParentHash != 0 {
		if b, err = d.data.bytes(32); err != nil {
			return nil, err
		}
		if mb.ParentHash = common.Hash(b); mb.ParentHash == (common.Hash{}) {
			return nil, errors.New("zero parent hash written out")
		}
	}
	n, err := d.count("transactions")
	if err != nil {
		return nil, err
	}
	explicitCum := flags&mbExplicitCumGas != 0
	var cum uint64
	if !explicitCum && n > 0 {
		if cum, err = d.data.uvarint(); err != nil {
			return nil, err
		}
	}
	if err := d.fits(n, txCost+receiptCost); err != nil {
		return nil, err
	}
	if n > 0 {
		mb.Txs = make([]*types.Transaction, n)
		mb.Senders = make([]common.Address, n)
		mb.Receipts = make([]*chain.Receipt, n)
	}
	for i := range n {
		tx, sender, err := d.decodeTx()
		if err != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, err)
		}
		mb.Txs[i], mb.Senders[i] = tx, sender
		r, err := d.decodeReceipt(explicitCum)
		if err != nil {
			return nil, fmt.Errorf("receipt %d: %w", i, err)
		}
		if !explicitCum {
			cum += r.GasUsed
			r.CumulativeGasUsed = cum
		}
		mb.Receipts[i] = r
	}
	if mb.Diff, err = d.decodeDiff(); err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	sl, err := d.data.uvarint()
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if mb.Signature, err = d.data.bytes(sl); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return mb, nil
}

func (d *decState) decodeTx() (*types.Transaction, common.Address, error) {
	kind, err := d.ctl.byte()
	if err != nil {
		return nil, common.Address{}, err
	}
	if kind == txKindRaw {
		sender, idx, err := d.addr()
		if err != nil {
			return nil, sender, fmt.Errorf("sender: %w", err)
		}
		n, err := d.data.uvarint()
		if err != nil {
			return nil, sender, err
		}
		raw, err := d.data.bytes(n)
		if err != nil {
			return nil, sender, err
		}
		if err := d.spend(txCost + len(raw)); err != nil {
			return nil, sender, err
		}
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw); err != nil {
			return nil, sender, err
		}
		d.lastNonce[idx] = tx.Nonce()
		return tx, sender, nil
	}
	typ := kind & 7
	form := int(kind >> txKindSigShift & 3)
	switch {
	case kind&^txKindKnownBits != 0 || typ == types.BlobTxType || typ > types.SetCodeTxType:
		return nil, common.Address{}, fmt.Errorf("unknown transaction kind %#x", kind)
	case form > txSigExplicit || form == txSigCompact155 && typ != types.LegacyTxType:
		return nil, common.Address{}, fmt.Errorf("signature form %d invalid for type %d", form, typ)
	}
	sender, sidx, err := d.addr()
	if err != nil {
		return nil, sender, fmt.Errorf("sender: %w", err)
	}
	flags, err := d.ctl.byte()
	if err != nil {
		return nil, sender, err
	}
	switch {
	case flags&txFValue != 0 && flags&txFValueBig != 0,
		typ == types.LegacyTxType && flags&(txFFee|txFAccessList) != 0,
		typ == types.AccessListTxType && flags&txFFee != 0,
		typ == types.SetCodeTxType && flags&(txFCreate|txFValueBig) != 0:
		return nil, sender, fmt.Errorf("field flags %#x invalid for type %d", flags, typ)
	}
	var nonce uint64
	if kind&txKindNonceSeq != 0 {
		last, ok := d.lastNonce[sidx]
		if !ok {
			return nil, sender, errors.New("nonce follows no earlier transaction of the sender")
		}
		nonce = last + 1
	} else if nonce, err = d.data.uvarint(); err != nil {
		return nil, sender, fmt.Errorf("nonce: %w", err)
	}
	regs := &d.regs
	if flags&txFChain != 0 {
		if err := d.dataBigInto(&regs.chain); err != nil {
			return nil, sender, fmt.Errorf("chain id: %w", err)
		}
	}
	if flags&txFPrice != 0 {
		if err := d.dataBigInto(&regs.price); err != nil {
			return nil, sender, fmt.Errorf("gas price: %w", err)
		}
	}
	if flags&txFFee != 0 {
		if err := d.dataBigInto(&regs.fee); err != nil {
			return nil, sender, fmt.Errorf("fee cap: %w", err)
		}
	}
	if flags&txFGas != 0 {
		if regs.gas, err = d.data.uvarint(); err != nil {
			return nil, sender, fmt.Errorf("gas: %w", err)
		}
	}
	var to *common.Address
	if flags&txFCreate == 0 {
		a, _, err := d.addr()
		if err != nil {
			return nil, sender, fmt.Errorf("to: %w", err)
		}
		to = &a
	}
	value := new(big.Int)
	switch {
	case flags&txFValue != 0:
		var w common.Hash
		if err := d.word(&w); err != nil {
			return nil, sender, fmt.Errorf("value: %w", err)
		}
		value.SetBytes(w[:])
	case flags&txFValueBig != 0:
		if value, err = d.dataBig(); err != nil {
			return nil, sender, fmt.Errorf("value: %w", err)
		}
	}
	data, err := d.calldata(to != nil)
	if err != nil {
		return nil, sender, fmt.Errorf("data: %w", err)
	}
	if err := d.spend(txCost + len(data)); err != nil {
		return nil, sender, err
	}
	var al types.AccessList
	if flags&txFAccessList != 0 {
		if al, err = d.accessList(); err != nil {
			return nil, sender, fmt.Errorf("access list: %w", err)
		}
	}
	var auths []types.SetCodeAuthorization
	if typ == types.SetCodeTxType {
		if auths, err = d.auths(&regs.chain); err != nil {
			return nil, sender, fmt.Errorf("authorizations: %w", err)
		}
	}
	v, r, s := new(big.Int), new(big.Int), new(big.Int)
	if form == txSigExplicit {
		for _, x := range []*big.Int{v, r, s} {
			if err := d.dataBigInto(x); err != nil {
				return nil, sender, fmt.Errorf("signature: %w", err)
			}
		}
	} else {
		b, err := d.data.bytes(64)
		if err != nil {
			return nil, sender, fmt.Errorf("signature: %w", err)
		}
		parity := b[32] >> 7
		r.SetBytes(b[:32])
		var sb [32]byte
		copy(sb[:], b[32:])
		sb[0] &= 0x7f
		s.SetBytes(sb[:])
		v.SetUint64(uint64(parity))
		if typ == types.LegacyTxType {
			if form == txSigCompact {
				v.SetUint64(27 + uint64(parity))
			} else {
				v.Lsh(&regs.chain, 1)
				v.Add(v, big.NewInt(35+int64(parity)))
			}
		}
	}
	var inner types.TxData
	switch typ {
	case types.LegacyTxType:
		inner = &types.LegacyTx{Nonce: nonce, GasPrice: &regs.price, Gas: regs.gas, To: to, Value: value, Data: data, V: v, R: r, S: s}
	case types.AccessListTxType:
		inner = &types.AccessListTx{ChainID: &regs.chain, Nonce: nonce, GasPrice: &regs.price, Gas: regs.gas, To: to, Value: value,
			Data: data, AccessList: al, V: v, R: r, S: s}
	case types.DynamicFeeTxType:
		inner = &types.DynamicFeeTx{ChainID: &regs.chain, Nonce: nonce, GasTipCap: &regs.price, GasFeeCap: &regs.fee, Gas: regs.gas,
			To: to, Value: value, Data: data, AccessList: al, V: v, R: r, S: s}
	case types.SetCodeTxType:
		var u [7]*uint256.Int
		for k, x := range []*big.Int{&regs.chain, &regs.price, &regs.fee, value, v, r, s} {
			var overflow bool
			if u[k], overflow = uint256.FromBig(x); overflow {
				return nil, sender, errors.New("set-code transaction field exceeds 256 bits")
			}
		}
		inner = &types.SetCodeTx{ChainID: u[0], Nonce: nonce, GasTipCap: u[1], GasFeeCap: u[2], Gas: regs.gas, To: *to, Value: u[3],
			Data: data, AccessList: al, AuthList: auths, V: u[4], R: u[5], S: u[6]}
	}
	d.lastNonce[sidx] = nonce
	return types.NewTx(inner), sender, nil
}

func (d *decState) accessList() (types.AccessList, error) {
	n, err := d.count("access tuples")
	if err != nil {
		return nil, err
	}
	if err := d.fits(n, tupleCost); err != nil {
		return nil, err
	}
	al := make(types.AccessList, n)
	for i := range al {
		if err := d.spend(tupleCost); err != nil {
			return nil, err
		}
		if al[i].Address, _, err = d.addr(); err != nil {
			return nil, err
		}
		k, err := d.count("storage keys")
		if err != nil {
			return nil, err
		}
		if err := d.fits(k, wordCost); err != nil {
			return nil, err
		}
		al[i].StorageKeys = make([]common.Hash, k)
		for j := range k {
			if err := d.word(&al[i].StorageKeys[j]); err != nil {
				return nil, fmt.Errorf("tuple %d key %d: %w", i, j, err)
			}
		}
	}
	return al, nil
}

func (d *decState) auths(txChain *big.Int) ([]types.SetCodeAuthorization, error) {
	n, err := d.count("authorizations")
	if err != nil {
		return nil, err
	}
	if err := d.fits(n, authCost); err != nil {
		return nil, err
	}
	out := make([]types.SetCodeAuthorization, n)
	for i := range out {
		if err := d.spend(authCost); err != nil {
			return nil, err
		}
		a := &out[i]
		mode, err := d.ctl.byte()
		if err != nil {
			return nil, err
		}
		if mode&^(authCompact|3) != 0 || mode&3 > authChainExplicit {
			return nil, fmt.Errorf("authorization %d: unknown mode %#x", i, mode)
		}
		if a.Address, _, err = d.addr(); err != nil {
			return nil, fmt.Errorf("authorization %d: %w", i, err)
		}
		if a.Nonce, err = d.data.uvarint(); err != nil {
			return nil, fmt.Errorf("authorization %d: %w", i, err)
		}
		switch mode & 3 {
		case authChainSame:
			if a.ChainID.SetFromBig(txChain) {
				return nil, fmt.Errorf("authorization %d: chain id exceeds 256 bits", i)
			}
		case authChainExplicit:
			c, err := d.dataU256()
			if err != nil {
				return nil, fmt.Errorf("authorization %d: %w", i, err)
			}
			a.ChainID = *c
		}
		if mode&authCompact == 0 {
			if a.V, err = d.data.byte(); err != nil {
				return nil, fmt.Errorf("authorization %d: %w", i, err)
			}
		}
		b, err := d.data.bytes(64)
		if err != nil {
			return nil, fmt.Errorf("authorization %d: %w", i, err)
		}
		var sb [32]byte
		copy(sb[:], b[32:])
		if mode&authCompact != 0 {
			a.V = sb[0] >> 7
			sb[0] &= 0x7f
		}
		a.R.SetBytes32(b[:32])
		a.S.SetBytes32(sb[:])
	}
	return out, nil
}

// calldata reads what encState.calldata wrote.
func (d *decState) calldata(call bool) ([]byte, error) {
	x, err := d.ctl.uvarint()
	if err != nil {
		return nil, err
	}
	if x&1 != 0 {
		return d.data.bytes(x >> 1)
	}
	if !call {
		return nil, errors.New("contract creation with word-coded data")
	}
	n := x >> 1
	if n > uint64(len(d.ctl.b)) {
		return nil, fmt.Errorf("%d words claimed, more than the input holds", n)
	}
	if err := d.fits(int(n), wordCost); err != nil {
		return nil, err
	}
	sel, err := d.ctl.bytes(4)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4+32*n)
	copy(out, sel)
	for j := range int(n) {
		if err := d.word((*common.Hash)(out[4+32*j : 4+32*j+32])); err != nil {
			return nil, fmt.Errorf("word %d: %w", j, err)
		}
	}
	return out, nil
}

func (d *decState) logData() ([]byte, error) {
	x, err := d.ctl.uvarint()
	if err != nil {
		return nil, err
	}
	if x&1 != 0 {
		return d.data.bytes(x >> 1)
	}
	n := x >> 1
	if n > uint64(len(d.ctl.b)) {
		return nil, fmt.Errorf("%d words claimed, more than the input holds", n)
	}
	if n == 0 {
		return nil, nil
	}
	if err := d.fits(int(n), wordCost); err != nil {
		return nil, err
	}
	out := make([]byte, 32*n)
	for j := range int(n) {
		if err := d.word((*common.Hash)(out[32*j : 32*j+32])); err != nil {
			return nil, fmt.Errorf("word %d: %w", j, err)
		}
	}
	return out, nil
}

func (d *decState) decodeReceipt(explicitCum bool) (*chain.Receipt, error) {
	if err := d.spend(receiptCost); err != nil {
		return nil, err
	}
	r := new(chain.Receipt)
	var err error
	if r.Status, err = d.ctl.uvarint(); err != nil {
		return nil, err
	}
	if r.GasUsed, err = d.ctl.uvarint(); err != nil {
		return nil, err
	}
	if explicitCum {
		if r.CumulativeGasUsed, err = d.data.uvarint(); err != nil {
			return nil, err
		}
	}
	n, err := d.count("logs")
	if err != nil {
		return nil, err
	}
	if err := d.fits(n, logCost); err != nil {
		return nil, err
	}
	if n > 0 {
		r.Logs = make([]*types.Log, n)
	}
	for j := range n {
		if err := d.spend(logCost); err != nil {
			return nil, err
		}
		l := new(types.Log)
		if l.Address, _, err = d.addr(); err != nil {
			return nil, fmt.Errorf("log %d: %w", j, err)
		}
		nt, err := d.count("topics")
		if err != nil {
			return nil, fmt.Errorf("log %d: %w", j, err)
		}
		if err := d.fits(nt, wordCost); err != nil {
			return nil, err
		}
		if nt > 0 {
			l.Topics = make([]common.Hash, nt)
		}
		for k := range nt {
			if err := d.word(&l.Topics[k]); err != nil {
				return nil, fmt.Errorf("log %d topic %d: %w", j, k, err)
			}
		}
		if l.Data, err = d.logData(); err != nil {
			return nil, fmt.Errorf("log %d data: %w", j, err)
		}
		r.Logs[j] = l
	}
	return r, nil
}

func (d *decState) decodeDiff() (*chain.StateDiff, error) {
	n, err := d.count("accounts")
	if err != nil {
		return nil, err
	}
	if err := d.fits(n, accountCost); err != nil {
		return nil, err
	}
	diff := &chain.StateDiff{Accounts: make([]chain.AccountDiff, n)}
	prev := int64(-1)
	for i := range n {
		if err := d.spend(accountCost); err != nil {
			return nil, err
		}
		a := &diff.Accounts[i]
		g, err := d.ctl.uvarint()
		if err != nil {
			return nil, fmt.Errorf("account %d: %w", i, err)
		}
		var idx int64
		if g == 0 {
			b, err := d.data.bytes(common.AddressLength)
			if err != nil {
				return nil, fmt.Errorf("account %d: %w", i, err)
			}
			idx = int64(d.addAddr(common.Address(b)))
		} else {
			if g > uint64(len(d.addrs)) || prev+int64(g) >= int64(len(d.addrs)) {
				return nil, fmt.Errorf("account %d: address index beyond the %d known", i, len(d.addrs))
			}
			idx = prev + int64(g)
		}
		prev = idx
		a.Address = d.addrs[idx]
		if err := d.decodeAccount(a, int32(idx)); err != nil {
			return nil, fmt.Errorf("account %d (%s): %w", i, a.Address, err)
		}
	}
	for i := range diff.Accounts {
		if err := d.decodeStorage(&diff.Accounts[i]); err != nil {
			return nil, fmt.Errorf("storage of %s: %w", diff.Accounts[i].Address, err)
		}
	}
	slices.SortFunc(diff.Accounts, func(a, b chain.AccountDiff) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	if err := diff.Validate(); err != nil {
		return nil, err
	}
	return diff, nil
}

func (d *decState) decodeAccount(a *chain.AccountDiff, idx int32) error {
	f, err := d.ctl.byte()
	if err != nil {
		return err
	}
	a.Deleted = f&acctDeleted != 0
	a.StorageReset = f&acctReset != 0
	nonceMode := int(f >> acctNonceShift & 3)
	hashMode := int(f >> acctHashShift & 3)
	switch nonceMode {
	case nonceNext:
		last, ok := d.lastNonce[idx]
		if !ok {
			return errors.New("nonce follows no transaction of the account")
		}
		a.Nonce = last + 1
	case nonceExplicit:
		if a.Nonce, err = d.data.uvarint(); err != nil {
			return err
		}
	case 3:
		return errors.New("unknown nonce form")
	}
	if f&acctHasCode != 0 {
		if hashMode != hashEmptyCode {
			return errors.New("code hash written beside the code")
		}
		n, err := d.data.uvarint()
		if err != nil {
			return err
		}
		code, err := d.data.bytes(n)
		if err != nil {
			return err
		}
		if code == nil {
			code = []byte{}
		}
		a.Code = code
		a.CodeHash = crypto.Keccak256Hash(code)
		d.codeHashes = append(d.codeHashes, a.CodeHash)
	} else {
		switch hashMode {
		case hashEmptyCode:
			a.CodeHash = types.EmptyCodeHash
		case hashZero:
		case hashDict:
			x, err := d.data.uvarint()
			if err != nil {
				return err
			}
			if x >= uint64(len(d.codeHashes)) {
				return fmt.Errorf("code hash index %d beyond the %d known", x, len(d.codeHashes))
			}
			a.CodeHash = d.codeHashes[x]
		case hashLiteral:
			b, err := d.data.bytes(32)
			if err != nil {
				return err
			}
			a.CodeHash = common.Hash(b)
			d.codeHashes = append(d.codeHashes, a.CodeHash)
		}
	}
	if f&acctBalance != 0 {
		if err := d.wordU256(&a.Balance); err != nil {
			return fmt.Errorf("balance: %w", err)
		}
		if a.Balance.IsZero() {
			return errors.New("zero balance written out")
		}
	}
	return nil
}

func (d *decState) decodeStorage(a *chain.AccountDiff) error {
	n, err := d.count("slots")
	if err != nil || n == 0 {
		return err
	}
	nd, err := d.ctl.uvarint()
	if err != nil {
		return err
	}
	if nd > uint64(n) {
		return fmt.Errorf("%d derived slots of %d", nd, n)
	}
	if err := d.spend(n * slotCost); err != nil {
		return err
	}
	a.Storage = make([]chain.SlotDiff, n)
	idx := uint64(0)
	for j := range int(nd) {
		s := &a.Storage[j]
		g, err := d.ctl.uvarint()
		if err != nil {
			return err
		}
		if g >= uint64(len(d.addrs)) || idx+g >= uint64(len(d.addrs)) {
			return fmt.Errorf("slot %d: address index beyond the %d known", j, len(d.addrs))
		}
		idx += g
		i, err := d.ctl.uvarint()
		if err != nil {
			return err
		}
		d.mappingKey(&s.Key, d.addrs[idx], i)
		if err := d.word(&s.Value); err != nil {
			return fmt.Errorf("slot %d value: %w", j, err)
		}
	}
	for j := int(nd); j < n; j++ {
		s := &a.Storage[j]
		if err := d.word(&s.Key); err != nil {
			return fmt.Errorf("slot %d key: %w", j, err)
		}
		if err := d.word(&s.Value); err != nil {
			return fmt.Errorf("slot %d value: %w", j, err)
		}
	}
	if nd > 0 {
		slices.SortFunc(a.Storage, func(x, y chain.SlotDiff) int { return bytes.Compare(x.Key[:], y.Key[:]) })
	}
	return nil
}

// mappingKey is keccak256(pad32(addr) ++ pad32(i)), the storage key of entry addr
// of a Solidity mapping at slot i.
func (d *decState) mappingKey(out *common.Hash, addr common.Address, i uint64) {
	mappingKeyInto(d.keccak, &d.kbuf, out, addr, i)
}

func mappingKeyInto(h crypto.KeccakState, buf *[64]byte, out *common.Hash, addr common.Address, i uint64) {
	*buf = [64]byte{}
	copy(buf[12:32], addr[:])
	for k := 0; k < 8; k++ {
		buf[63-k] = byte(i >> (8 * k))
	}
	h.Reset()
	h.Write(buf[:])
	h.Read(out[:])
}
