package stream

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// gen builds random mini-blocks and headers of every shape the codec has a
// special case or a fallback for; values repeat often (a small address and word
// pool) so that dictionaries, move-to-front lists and deltas are exercised.
type gen struct {
	r     *rand.Rand
	addrs []common.Address
	words []common.Hash
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x5eed))}
	for range 12 {
		g.addrs = append(g.addrs, g.freshAddr())
	}
	for range 8 {
		g.words = append(g.words, g.rawWord())
	}
	return g
}

func (g *gen) n(k int) int           { return g.r.IntN(k) }
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g *gen) freshAddr() common.Address {
	a := common.Address(g.bytes(20))
	switch g.n(6) {
	case 0: // leading zero bytes, like precompiles and system contracts
		copy(a[:], make([]byte, 4+g.n(16)))
	case 1:
		a = common.Address{}
	}
	return a
}

func (g *gen) addr() common.Address {
	if g.chance(0.7) {
		return g.addrs[g.n(len(g.addrs))]
	}
	a := g.freshAddr()
	if g.chance(0.5) {
		g.addrs = append(g.addrs, a)
	}
	return a
}

func (g *gen) rawWord() common.Hash { return common.Hash(g.bytes(32)) }

// num is a random integer of up to maxBytes bytes, often small or zero.
func (g *gen) num(maxBytes int) []byte {
	switch g.n(4) {
	case 0:
		return nil
	case 1:
		return g.bytes(1 + g.n(2))
	}
	b := g.bytes(1 + g.n(maxBytes))
	if g.chance(0.3) {
		b[0] = 0 // non-minimal input for big.Int.SetBytes: still one value
	}
	return b
}

func (g *gen) big(maxBytes int) *big.Int { return new(big.Int).SetBytes(g.num(maxBytes)) }

func (g *gen) u256() *uint256.Int { return new(uint256.Int).SetBytes(g.num(32)) }

func (g *gen) word() common.Hash {
	var w common.Hash
	switch g.n(9) {
	case 0:
	case 1:
		copy(w[32-4:], g.bytes(1+g.n(4)))
	case 2:
		a := g.addr()
		copy(w[12:], a[:])
	case 3:
		w = g.words[g.n(len(g.words))]
	case 4: // near a pool word
		var x, d uint256.Int
		x.SetBytes32(g.words[g.n(len(g.words))][:])
		d.SetUint64(g.r.Uint64() >> g.n(64))
		if g.chance(0.5) {
			x.Add(&x, &d)
		} else {
			x.Sub(&x, &d)
		}
		w = x.Bytes32()
	case 5:
		copy(w[32-8-g.n(12):], g.bytes(8))
	case 6:
		w = mapKey(g.addr(), uint64(g.n(6)))
	case 7:
		w = common.MaxHash
	default:
		w = g.rawWord()
		if g.chance(0.3) {
			g.words = append(g.words, w)
		}
	}
	return w
}

func mapKey(a common.Address, i uint64) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(a[:], 32), common.BigToHash(new(big.Int).SetUint64(i)).Bytes())
}

func (g *gen) calldata() []byte {
	switch g.n(5) {
	case 0:
		return nil
	case 1:
		return g.bytes(g.n(70))
	case 2:
		return g.bytes(4)
	}
	b := g.bytes(4)
	for range g.n(5) {
		w := g.word()
		b = append(b, w[:]...)
	}
	return b
}

func (g *gen) accessList() types.AccessList {
	if g.chance(0.6) {
		return nil
	}
	al := types.AccessList{}
	for range g.n(4) {
		t := types.AccessTuple{Address: g.addr()}
		for range g.n(4) {
			t.StorageKeys = append(t.StorageKeys, g.word())
		}
		al = append(al, t)
	}
	return al
}

func (g *gen) to() *common.Address {
	if g.chance(0.1) {
		return nil
	}
	a := g.addr()
	return &a
}

// sig returns signature values: usually well-formed (32-byte r, low s), and
// otherwise anything RLP can carry.
func (g *gen) sig(typed bool, chainID *big.Int) (v, r, s *big.Int) {
	r = new(big.Int).SetBytes(g.bytes(32))
	s = new(big.Int).SetBytes(g.bytes(32))
	s.SetBit(s, 255, 0)
	parity := int64(g.n(2))
	switch {
	case g.chance(0.15):
		return g.big(40), g.big(40), g.big(40)
	case g.chance(0.1):
		s.SetBit(s, 255, 1)
	case g.chance(0.1):
		r.Rsh(r, uint(8*g.n(32)))
		s.Rsh(s, uint(8*g.n(32)))
	}
	switch {
	case typed:
		v = big.NewInt(parity)
	case g.chance(0.4):
		v = big.NewInt(27 + parity)
	case chainID != nil:
		v = new(big.Int).Add(new(big.Int).Lsh(chainID, 1), big.NewInt(35+parity))
	default:
		v = big.NewInt(parity)
	}
	return v, r, s
}

func (g *gen) chainID() *big.Int {
	switch g.n(4) {
	case 0:
		return big.NewInt(1337)
	case 1:
		return big.NewInt(31337)
	case 2:
		return new(big.Int)
	}
	return g.big(9)
}

func (g *gen) tx() *types.Transaction {
	cid := g.chainID()
	nonce := g.r.Uint64() >> g.n(64)
	gas := g.r.Uint64() >> g.n(64)
	switch g.n(8) {
	case 0, 1:
		var chainForV *big.Int
		if g.chance(0.7) {
			chainForV = cid
		}
		v, r, s := g.sig(false, chainForV)
		return types.NewTx(&types.LegacyTx{Nonce: nonce, GasPrice: g.big(12), Gas: gas, To: g.to(), Value: g.big(34), Data: g.calldata(), V: v, R: r, S: s})
	case 2:
		v, r, s := g.sig(true, nil)
		return types.NewTx(&types.AccessListTx{ChainID: cid, Nonce: nonce, GasPrice: g.big(12), Gas: gas, To: g.to(), Value: g.big(34),
			Data: g.calldata(), AccessList: g.accessList(), V: v, R: r, S: s})
	case 3, 4:
		v, r, s := g.sig(true, nil)
		return types.NewTx(&types.DynamicFeeTx{ChainID: cid, Nonce: nonce, GasTipCap: g.big(12), GasFeeCap: g.big(12), Gas: gas, To: g.to(),
			Value: g.big(34), Data: g.calldata(), AccessList: g.accessList(), V: v, R: r, S: s})
	case 5:
		var auths []types.SetCodeAuthorization
		for range g.n(4) {
			a := types.SetCodeAuthorization{Address: g.addr(), Nonce: g.r.Uint64() >> g.n(64), V: uint8(g.n(2))}
			switch g.n(3) {
			case 0:
				a.ChainID.SetFromBig(new(big.Int).Mod(cid, new(big.Int).Lsh(big.NewInt(1), 256)))
			case 1:
				a.ChainID = *g.u256()
			}
			a.R, a.S = *g.u256(), *g.u256()
			if g.chance(0.2) {
				a.V = uint8(g.r.Uint32())
			}
			auths = append(auths, a)
		}
		v, r, s := g.sig(true, nil)
		u := func(x *big.Int) *uint256.Int {
			z, _ := uint256.FromBig(new(big.Int).Mod(x, new(big.Int).Lsh(big.NewInt(1), 256)))
			return z
		}
		return types.NewTx(&types.SetCodeTx{ChainID: u(cid), Nonce: nonce, GasTipCap: g.u256(), GasFeeCap: g.u256(), Gas: gas, To: g.addr(),
			Value: g.u256(), Data: g.calldata(), AccessList: g.accessList(), AuthList: auths, V: u(v), R: u(r), S: u(s)})
	case 6:
		var hashes []common.Hash
		for range g.n(3) {
			hashes = append(hashes, g.rawWord())
		}
		return types.NewTx(&types.BlobTx{ChainID: uint256.NewInt(1337), Nonce: nonce, GasTipCap: g.u256(), GasFeeCap: g.u256(), Gas: gas,
			To: g.addr(), Value: g.u256(), Data: g.calldata(), BlobFeeCap: g.u256(), BlobHashes: hashes,
			V: uint256.NewInt(uint64(g.n(2))), R: g.u256(), S: g.u256()})
	default:
		var mint *big.Int
		if g.chance(0.5) {
			mint = g.big(12)
		}
		return types.NewTx(&types.DepositTx{SourceHash: g.rawWord(), From: g.addr(), To: g.to(), Mint: mint, Value: g.big(12), Gas: gas,
			IsSystemTransaction: g.chance(0.2), Data: g.calldata()})
	}
}

func (g *gen) logs() []*types.Log {
	var out []*types.Log
	for range g.n(4) {
		l := &types.Log{Address: g.addr()}
		for range g.n(6) {
			l.Topics = append(l.Topics, g.word())
		}
		switch g.n(3) {
		case 0:
			l.Data = g.bytes(g.n(80))
		case 1:
			for range g.n(4) {
				w := g.word()
				l.Data = append(l.Data, w[:]...)
			}
		}
		out = append(out, l)
	}
	return out
}

func (g *gen) account(addr common.Address, lastNonce map[common.Address]uint64) chain.AccountDiff {
	a := chain.AccountDiff{Address: addr, CodeHash: types.EmptyCodeHash}
	if g.chance(0.1) {
		a.Deleted = true
		a.StorageReset = g.chance(0.5)
		switch g.n(3) {
		case 0:
			a.CodeHash = common.Hash{}
		case 1:
			a.Code = []byte{}
		}
		return a
	}
	a.StorageReset = g.chance(0.1)
	if n, ok := lastNonce[addr]; ok && g.chance(0.7) {
		a.Nonce = n + 1
	} else if g.chance(0.5) {
		a.Nonce = g.r.Uint64() >> g.n(64)
	}
	a.Balance.SetBytes(g.num(32))
	switch g.n(6) {
	case 0:
		a.Code = g.bytes(g.n(100))
		a.CodeHash = crypto.Keccak256Hash(a.Code)
	case 1:
		a.Code = []byte{}
	case 2:
		a.CodeHash = g.words[g.n(len(g.words))]
	case 3:
		a.CodeHash = common.Hash{}
	}
	for range g.n(6) {
		var k common.Hash
		switch g.n(3) {
		case 0:
			k = mapKey(g.addr(), uint64(g.n(5)))
		default:
			k = g.word()
		}
		a.Storage = append(a.Storage, chain.SlotDiff{Key: k, Value: g.word()})
	}
	slices.SortFunc(a.Storage, func(x, y chain.SlotDiff) int { return bytes.Compare(x.Key[:], y.Key[:]) })
	a.Storage = slices.CompactFunc(a.Storage, func(x, y chain.SlotDiff) bool { return x.Key == y.Key })
	return a
}

func (g *gen) miniBlock() *chain.MiniBlock {
	mb := &chain.MiniBlock{
		Index: g.r.Uint64() >> g.n(64), IndexInBlock: g.r.Uint32() >> g.n(32), TimestampMs: g.r.Uint64() >> g.n(64),
		Env: chain.BlockEnv{Number: g.r.Uint64() >> g.n(64), Time: g.r.Uint64() >> g.n(64), BaseFee: g.big(12), GasLimit: g.r.Uint64() >> g.n(64),
			Coinbase: g.addr(), Random: g.rawWord()},
		BeaconRootCall: g.chance(0.3), ParentHashCall: g.chance(0.3),
	}
	if g.chance(0.1) {
		mb.Env.BaseFee = nil
	}
	if g.chance(0.3) {
		mb.ParentHash = g.rawWord()
	}
	ntx := g.n(12)
	cum := g.r.Uint64() >> g.n(64)
	explicit := g.chance(0.2)
	lastNonce := make(map[common.Address]uint64)
	for range ntx {
		tx := g.tx()
		sender := g.addr()
		if g.chance(0.3) && len(mb.Senders) > 0 {
			sender = mb.Senders[g.n(len(mb.Senders))]
		}
		mb.Txs = append(mb.Txs, tx)
		mb.Senders = append(mb.Senders, sender)
		if tx.Type() != types.DepositTxType {
			lastNonce[sender] = tx.Nonce()
		} else {
			lastNonce[sender] = 0
		}
		r := &chain.Receipt{Status: uint64(g.n(2)), GasUsed: g.r.Uint64() >> g.n(64), Logs: g.logs()}
		if g.chance(0.05) {
			r.Status = g.r.Uint64()
		}
		cum += r.GasUsed
		r.CumulativeGasUsed = cum
		if explicit {
			r.CumulativeGasUsed = g.r.Uint64() >> g.n(64)
		}
		mb.Receipts = append(mb.Receipts, r)
	}
	if !g.chance(0.05) {
		mb.Diff = &chain.StateDiff{}
		seen := make(map[common.Address]bool)
		cands := append(slices.Clone(mb.Senders), mb.Env.Coinbase)
		for range g.n(8) {
			cands = append(cands, g.addr())
		}
		for _, a := range cands {
			if !seen[a] && g.chance(0.8) {
				seen[a] = true
				mb.Diff.Accounts = append(mb.Diff.Accounts, g.account(a, lastNonce))
			}
		}
		mb.Diff.Sort()
	}
	switch g.n(4) {
	case 0:
	case 1:
		mb.Signature = g.bytes(g.n(100))
	default:
		mb.Signature = g.bytes(65)
	}
	return mb
}

func (g *gen) header() *chain.SignedHeader {
	h := chain.SealHeaderRoots(chain.BlockEnv{Number: g.r.Uint64() >> g.n(64), Time: g.r.Uint64(), BaseFee: g.big(12),
		GasLimit: g.r.Uint64() >> g.n(64), Coinbase: g.addr(), Random: g.rawWord()},
		g.rawWord(), g.rawWord(), g.word(), g.word(), types.Bloom(g.bytes(256)), g.r.Uint64()>>g.n(64))
	if g.chance(0.3) {
		h.TxHash, h.ReceiptHash = types.EmptyTxsHash, types.EmptyReceiptsHash
		h.Bloom = types.Bloom{}
	}
	if g.chance(0.3) {
		h.Extra = g.bytes(g.n(40))
		h.Difficulty = g.big(10)
		h.Nonce = types.BlockNonce(g.bytes(8))
	}
	// Cut the optional fields after a random one (a legacy header has none);
	// the ones left set keep their values.
	k := g.n(10)
	if k <= 0 {
		h.BaseFee = nil
	}
	if k <= 1 {
		h.WithdrawalsHash = nil
	}
	if k <= 2 {
		h.BlobGasUsed = nil
	}
	if k <= 3 {
		h.ExcessBlobGas = nil
	}
	if k <= 4 {
		h.ParentBeaconRoot = nil
	}
	if k <= 5 {
		h.RequestsHash = nil
	}
	if k >= 7 {
		w := g.word()
		h.BlockAccessListHash = &w
	}
	if k >= 8 {
		s := g.r.Uint64()
		h.SlotNumber = &s
	}
	if k >= 8 && g.chance(0.5) {
		h.BlockAccessListHash = nil // a nil field before a set one
		h.BlobGasUsed = nil
	}
	sig := g.bytes(65)
	if g.chance(0.1) {
		sig = nil
	}
	return &chain.SignedHeader{Header: h, Signature: sig}
}
