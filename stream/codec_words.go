package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// Codings shared by mini-blocks and headers. Within one message the encoder and
// the decoder keep the same per-message state, in the same order:
//
//   - the address dictionary: every 20-byte address is written once, where it
//     first occurs, and referred to afterwards; an address code (one ctl byte)
//     is 0..7 for the entries of a move-to-front list of the 8 most recently
//     used addresses, addrCodeNew for a new address (20 data bytes, appended to
//     the dictionary) or addrCodeIndex for any dictionary entry (uvarint index
//     in data). Every address code moves its address to the front of the list.
//   - the word dictionary: the 32-byte words (calldata arguments, topics, log
//     data, storage keys and values, balances, values) of at least
//     wordDictMinLen significant bytes that were written out, with their own
//     8-entry move-to-front list. See encState.word for the word codes.
//
// Numbers: uvarint is encoding/binary's; a big integer is uvarint(length) and
// its minimal big-endian bytes (zero: length 0).

const (
	mruSize = 8

	addrCodeNew   = mruSize
	addrCodeIndex = mruSize + 1

	// Word codes (one ctl byte).
	wordTagLitMax = 32                // 0..32: literal, that many significant bytes in data
	wordTagAddr   = 33                // a left-padded address: an address code follows
	wordTagMRU    = 34                // 34..41: entry k of the word move-to-front list
	wordTagDict   = wordTagMRU + 8    // 42: dictionary entry, data: zigzag uvarint of index - previous index
	wordTagDelta  = wordTagDict + 1   // 43..50: entry k of the move-to-front list plus a small signed delta
	wordTagEnd    = wordTagDelta + 8  // first invalid code
	wordDictMin   = 4                 // literals and deltas with this many significant bytes enter the dictionary
	wordAddrMin   = 17                // a padded address-shaped word this long is taken for an address
	maxDelta      = uint64(1)<<62 - 1 // largest magnitude of a delta
	wordCost      = 32                // decoded-size budget charged per word
	addrCost      = common.AddressLength
)

// mru is a move-to-front list of dictionary indices.
type mru struct {
	n int
	v [mruSize]int32
}

func (m *mru) find(x int32) int {
	for i := 0; i < m.n; i++ {
		if m.v[i] == x {
			return i
		}
	}
	return -1
}

// use moves x to the front, inserting it (and dropping the last entry when
// full) if absent.
func (m *mru) use(x int32) {
	p := m.find(x)
	if p < 0 {
		if m.n < mruSize {
			m.n++
		}
		p = m.n - 1
	}
	copy(m.v[1:p+1], m.v[:p])
	m.v[0] = x
}

// sigLen is the number of significant bytes of a big-endian word.
func sigLen(w *common.Hash) int {
	for i, b := range w {
		if b != 0 {
			return 32 - i
		}
	}
	return 0
}

func isAddrWord(w *common.Hash) bool {
	return [12]byte(w[:12]) == [12]byte{}
}

func uvarintLen(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

func zigzag(x int64) uint64   { return uint64(x<<1) ^ uint64(x>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// encState is the encoder's per-message state.
type encState struct {
	ctl, data []byte

	addrs   []common.Address
	addrIdx map[common.Address]int32
	addrMRU mru

	words   []common.Hash
	wordIdx map[common.Hash]int32
	wordMRU mru
	lastRef int32

	codeHashes []common.Hash
	codeIdx    map[common.Hash]int32

	// lastNonce is the nonce of the last transaction of each sender (by
	// dictionary index) so far.
	lastNonce map[int32]uint64
	regs      txRegs

	err error
	tmp []byte
}

// txRegs are the transaction fields that are written only when they change
// from one transaction to the next.
type txRegs struct {
	chain, price, fee big.Int
	gas               uint64
}

func (r *txRegs) reset() {
	r.chain.SetUint64(0)
	r.price.SetUint64(0)
	r.fee.SetUint64(0)
	r.gas = 0
}

func (e *encState) init() {
	e.addrIdx = make(map[common.Address]int32)
	e.wordIdx = make(map[common.Hash]int32)
	e.codeIdx = make(map[common.Hash]int32)
	e.lastNonce = make(map[int32]uint64)
}

func (e *encState) reset() {
	e.ctl, e.data = e.ctl[:0], e.data[:0]
	e.addrs = e.addrs[:0]
	clear(e.addrIdx)
	e.addrMRU = mru{}
	e.words = e.words[:0]
	clear(e.wordIdx)
	e.wordMRU = mru{}
	e.lastRef = 0
	e.codeHashes = e.codeHashes[:0]
	clear(e.codeIdx)
	clear(e.lastNonce)
	e.regs.reset()
	e.err = nil
}

// body joins the streams: uvarint(len(ctl)) | ctl | data.
func (e *encState) body() []byte {
	out := binary.AppendUvarint(e.tmp[:0], uint64(len(e.ctl)))
	out = append(out, e.ctl...)
	out = append(out, e.data...)
	e.tmp = out
	return out
}

func (e *encState) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encState) ctlByte(b byte)         { e.ctl = append(e.ctl, b) }
func (e *encState) ctlUvarint(x uint64)    { e.ctl = binary.AppendUvarint(e.ctl, x) }
func (e *encState) dataUvarint(x uint64)   { e.data = binary.AppendUvarint(e.data, x) }
func (e *encState) dataBytes(b []byte)     { e.data = append(e.data, b...) }
func (e *encState) dataLenBytes(b []byte)  { e.dataUvarint(uint64(len(b))); e.dataBytes(b) }
func (e *encState) ctlLen(n int, raw bool) { e.ctlUvarint(uint64(n)<<1 | b2u(raw)) }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// dataBig writes a non-negative big integer (nil is zero).
func (e *encState) dataBig(x *big.Int) {
	if x == nil {
		e.dataUvarint(0)
		return
	}
	if x.Sign() < 0 {
		e.fail(errors.New("negative integer"))
		return
	}
	n := (x.BitLen() + 7) / 8
	e.dataUvarint(uint64(n))
	e.data = append(e.data, make([]byte, n)...)
	x.FillBytes(e.data[len(e.data)-n:])
}

// dataU256 writes a 256-bit integer as dataBig does.
func (e *encState) dataU256(x *uint256.Int) {
	n := (x.BitLen() + 7) / 8
	e.dataUvarint(uint64(n))
	b := x.Bytes32()
	e.dataBytes(b[32-n:])
}

// dataFixed32 writes x as 32 big-endian bytes; x must fit.
func (e *encState) dataFixed32(x *big.Int) {
	e.data = append(e.data, make([]byte, 32)...)
	x.FillBytes(e.data[len(e.data)-32:])
}

func (e *encState) addAddr(a common.Address) int32 {
	idx := int32(len(e.addrs))
	e.addrs = append(e.addrs, a)
	e.addrIdx[a] = idx
	return idx
}

// addr writes an address code and returns the address's dictionary index.
func (e *encState) addr(a common.Address) int32 {
	idx, ok := e.addrIdx[a]
	switch {
	case !ok:
		e.ctlByte(addrCodeNew)
		e.dataBytes(a[:])
		idx = e.addAddr(a)
	default:
		if p := e.addrMRU.find(idx); p >= 0 {
			e.ctlByte(byte(p))
		} else {
			e.ctlByte(addrCodeIndex)
			e.dataUvarint(uint64(idx))
		}
	}
	e.addrMRU.use(idx)
	return idx
}

func (e *encState) addWord(w *common.Hash) {
	idx := int32(len(e.words))
	e.words = append(e.words, *w)
	e.wordIdx[*w] = idx
	e.wordMRU.use(idx)
}

// word writes a 32-byte word with the cheapest of its codes: a short literal;
// an entry of the move-to-front list; a known address; a dictionary entry; a
// new address (for an address-shaped word of wordAddrMin or more significant
// bytes); a small delta from a list entry; a literal.
func (e *encState) word(w *common.Hash) {
	l := sigLen(w)
	if l < wordDictMin {
		e.ctlByte(byte(l))
		e.dataBytes(w[32-l:])
		return
	}
	for k := 0; k < e.wordMRU.n; k++ {
		if e.words[e.wordMRU.v[k]] == *w {
			e.ctlByte(wordTagMRU + byte(k))
			e.wordMRU.use(e.wordMRU.v[k])
			return
		}
	}
	if isAddrWord(w) {
		a := common.Address(w[12:])
		if _, ok := e.addrIdx[a]; ok || l >= wordAddrMin {
			e.ctlByte(wordTagAddr)
			e.addr(a)
			return
		}
	}
	// Costs in data bytes; ties go to the earlier choice.
	bestCost, best := l, -1 // literal
	dictIdx, inDict := e.wordIdx[*w]
	var dictZ uint64
	if inDict {
		dictZ = zigzag(int64(dictIdx) - int64(e.lastRef))
		if c := uvarintLen(dictZ); c <= bestCost {
			bestCost, best = c, -2
		}
	}
	var x, base, d uint256.Int
	var deltaZ uint64
	x.SetBytes32(w[:])
	for k := 0; k < e.wordMRU.n; k++ {
		base.SetBytes32(e.words[e.wordMRU.v[k]][:])
		var z uint64
		if d.Sub(&x, &base); d.IsUint64() && d.Uint64() <= maxDelta {
			z = d.Uint64() << 1
		} else if d.Sub(&base, &x); d.IsUint64() && d.Uint64() <= maxDelta {
			z = d.Uint64()<<1 | 1
		} else {
			continue
		}
		if c := uvarintLen(z); c < bestCost {
			bestCost, best, deltaZ = c, k, z
		}
	}
	switch {
	case best == -2:
		e.ctlByte(wordTagDict)
		e.dataUvarint(dictZ)
		e.lastRef = dictIdx
		e.wordMRU.use(dictIdx)
	case best >= 0:
		e.ctlByte(wordTagDelta + byte(best))
		e.dataUvarint(deltaZ)
		e.addWord(w)
	default:
		e.ctlByte(byte(l))
		e.dataBytes(w[32-l:])
		e.addWord(w)
	}
}

// wordU256 writes a 256-bit integer as a word.
func (e *encState) wordU256(x *uint256.Int) {
	w := common.Hash(x.Bytes32())
	e.word(&w)
}

// reader consumes one stream of a message body.
type reader struct {
	b    []byte
	name string
}

func (r *reader) truncated() error { return fmt.Errorf("%s stream truncated", r.name) }

func (r *reader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, r.truncated()
	}
	b := r.b[0]
	r.b = r.b[1:]
	return b, nil
}

func (r *reader) uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		if n == 0 {
			return 0, r.truncated()
		}
		return 0, fmt.Errorf("varint overflows 64 bits in %s stream", r.name)
	}
	r.b = r.b[n:]
	return x, nil
}

func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)) {
		return nil, r.truncated()
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, nil
}

// decState is the decoder's per-message state, mirroring encState.
type decState struct {
	ctl, data reader

	addrs   []common.Address
	addrMRU mru

	words   []common.Hash
	wordMRU mru
	lastRef int32

	codeHashes []common.Hash
	lastNonce  map[int32]uint64
	regs       txRegs

	// budget is what is left of MaxDecodedBytes for the decoded value.
	budget int64

	keccak crypto.KeccakState
	kbuf   [64]byte
}

func (d *decState) init() {
	d.lastNonce = make(map[int32]uint64)
	d.keccak = crypto.NewKeccakState()
}

// reset starts a message: body is uvarint(len(ctl)) | ctl | data.
func (d *decState) reset(body []byte) error {
	n, k := binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)-k) {
		return errors.New("bad stream lengths")
	}
	d.ctl = reader{b: body[k : k+int(n)], name: "control"}
	d.data = reader{b: body[k+int(n):], name: "data"}
	d.addrs = d.addrs[:0]
	d.addrMRU = mru{}
	d.words = d.words[:0]
	d.wordMRU = mru{}
	d.lastRef = 0
	d.codeHashes = d.codeHashes[:0]
	clear(d.lastNonce)
	d.regs.reset()
	d.budget = MaxDecodedBytes
	return nil
}

// finish checks that both streams were consumed.
func (d *decState) finish() error {
	if len(d.ctl.b) != 0 || len(d.data.b) != 0 {
		return fmt.Errorf("%d control and %d data bytes left over", len(d.ctl.b), len(d.data.b))
	}
	return nil
}

// spend charges n bytes of decoded output against the budget.
func (d *decState) spend(n int) error {
	d.budget -= int64(n)
	if d.budget < 0 {
		return fmt.Errorf("decoded size exceeds limit of %d bytes", MaxDecodedBytes)
	}
	return nil
}

// fits checks, before allocating for n items of unit decoded bytes each, that
// the budget can pay for them (it is charged as they are decoded).
func (d *decState) fits(n, unit int) error {
	if int64(n)*int64(unit) > d.budget {
		return fmt.Errorf("%d items exceed the decoded size limit of %d bytes", n, MaxDecodedBytes)
	}
	return nil
}

// count reads a ctl uvarint that counts items each of which takes at least one
// more ctl byte, so it cannot exceed what is left.
func (d *decState) count(what string) (int, error) {
	n, err := d.ctl.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.ctl.b)) {
		return 0, fmt.Errorf("%d %s claimed, more than the input holds", n, what)
	}
	return int(n), nil
}

func (d *decState) dataBig() (*big.Int, error) {
	n, err := d.data.uvarint()
	if err != nil {
		return nil, err
	}
	b, err := d.data.bytes(n)
	if err != nil {
		return nil, err
	}
	if n > 0 && b[0] == 0 {
		return nil, errors.New("non-canonical integer")
	}
	return new(big.Int).SetBytes(b), nil
}

// dataBigInto is dataBig into an existing integer.
func (d *decState) dataBigInto(x *big.Int) error {
	v, err := d.dataBig()
	if err != nil {
		return err
	}
	x.Set(v)
	return nil
}

func (d *decState) dataU256() (*uint256.Int, error) {
	n, err := d.data.uvarint()
	if err != nil {
		return nil, err
	}
	if n > 32 {
		return nil, fmt.Errorf("integer of %d bytes exceeds 256 bits", n)
	}
	b, err := d.data.bytes(n)
	if err != nil {
		return nil, err
	}
	if n > 0 && b[0] == 0 {
		return nil, errors.New("non-canonical integer")
	}
	return new(uint256.Int).SetBytes(b), nil
}

func (d *decState) addAddr(a common.Address) int32 {
	d.addrs = append(d.addrs, a)
	return int32(len(d.addrs) - 1)
}

// addr reads an address code.
func (d *decState) addr() (common.Address, int32, error) {
	if err := d.spend(addrCost); err != nil {
		return common.Address{}, 0, err
	}
	c, err := d.ctl.byte()
	if err != nil {
		return common.Address{}, 0, err
	}
	var idx int32
	switch {
	case c < mruSize:
		if int(c) >= d.addrMRU.n {
			return common.Address{}, 0, fmt.Errorf("address code %d beyond the %d recent addresses", c, d.addrMRU.n)
		}
		idx = d.addrMRU.v[c]
	case c == addrCodeNew:
		b, err := d.data.bytes(common.AddressLength)
		if err != nil {
			return common.Address{}, 0, err
		}
		idx = d.addAddr(common.Address(b))
	case c == addrCodeIndex:
		x, err := d.data.uvarint()
		if err != nil {
			return common.Address{}, 0, err
		}
		if x >= uint64(len(d.addrs)) {
			return common.Address{}, 0, fmt.Errorf("address index %d beyond the %d known", x, len(d.addrs))
		}
		idx = int32(x)
	default:
		return common.Address{}, 0, fmt.Errorf("unknown address code %d", c)
	}
	d.addrMRU.use(idx)
	return d.addrs[idx], idx, nil
}

func (d *decState) addWord(w *common.Hash) {
	d.words = append(d.words, *w)
	d.wordMRU.use(int32(len(d.words) - 1))
}

// word reads a word code (see encState.word) into w.
func (d *decState) word(w *common.Hash) error {
	if err := d.spend(wordCost); err != nil {
		return err
	}
	tag, err := d.ctl.byte()
	if err != nil {
		return err
	}
	switch {
	case tag <= wordTagLitMax:
		b, err := d.data.bytes(uint64(tag))
		if err != nil {
			return err
		}
		if tag > 0 && b[0] == 0 {
			return errors.New("non-canonical word literal")
		}
		*w = common.Hash{}
		copy(w[32-tag:], b)
		if int(tag) >= wordDictMin {
			d.addWord(w)
		}
	case tag == wordTagAddr:
		a, _, err := d.addr()
		if err != nil {
			return err
		}
		*w = common.Hash{}
		copy(w[12:], a[:])
	case tag < wordTagDict:
		k := int(tag - wordTagMRU)
		if k >= d.wordMRU.n {
			return fmt.Errorf("word code %d beyond the %d recent words", tag, d.wordMRU.n)
		}
		idx := d.wordMRU.v[k]
		*w = d.words[idx]
		d.wordMRU.use(idx)
	case tag == wordTagDict:
		z, err := d.data.uvarint()
		if err != nil {
			return err
		}
		idx := int64(d.lastRef) + unzigzag(z)
		if idx < 0 || idx >= int64(len(d.words)) {
			return fmt.Errorf("word index %d beyond the %d known", idx, len(d.words))
		}
		d.lastRef = int32(idx)
		*w = d.words[idx]
		d.wordMRU.use(int32(idx))
	case tag < wordTagEnd:
		k := int(tag - wordTagDelta)
		if k >= d.wordMRU.n {
			return fmt.Errorf("word code %d beyond the %d recent words", tag, d.wordMRU.n)
		}
		z, err := d.data.uvarint()
		if err != nil {
			return err
		}
		if z>>1 > maxDelta {
			return errors.New("word delta too large")
		}
		var x, dl uint256.Int
		x.SetBytes32(d.words[d.wordMRU.v[k]][:])
		dl.SetUint64(z >> 1)
		if z&1 == 0 {
			x.Add(&x, &dl)
		} else {
			x.Sub(&x, &dl)
		}
		*w = x.Bytes32()
		if sigLen(w) >= wordDictMin {
			d.addWord(w)
		}
	default:
		return fmt.Errorf("unknown word code %d", tag)
	}
	return nil
}

// wordU256 reads a word as a 256-bit integer.
func (d *decState) wordU256(x *uint256.Int) error {
	var w common.Hash
	if err := d.word(&w); err != nil {
		return err
	}
	x.SetBytes32(w[:])
	return nil
}
