package rpc

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"
)

// testChain is a small chain: genesis, two sealed blocks holding every
// transaction type, and an open (unsealed) block; plus one transaction that only
// sits in the pool.
type testChain struct {
	cfg     *params.ChainConfig
	signer  types.Signer
	keys    []*ecdsa.PrivateKey
	addrs   []common.Address
	blocks  []*Block // sealed, index == number
	pending *Block   // open block, number len(blocks)
	poolTx  *types.Transaction
	txs     map[common.Hash]*TxInfo
	rcpts   map[common.Hash]*ReceiptInfo

	contract common.Address // created in block 1
	topicA   common.Hash
	topicB   common.Hash
}

const gwei = 1_000_000_000

var testKeys = []string{
	"b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
	"8a1f9a8f95be41cd7ccb6168179afb4504aefe388d1e14474d32c45c72ce7b7a",
	"49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee",
}

func newTestChain(t testing.TB) *testChain {
	t.Helper()
	cfg := *params.MergedTestChainConfig
	cfg.ChainID = big.NewInt(901)
	c := &testChain{
		cfg:    &cfg,
		signer: types.LatestSigner(&cfg),
		txs:    make(map[common.Hash]*TxInfo),
		rcpts:  make(map[common.Hash]*ReceiptInfo),
		topicA: common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"),
		topicB: common.HexToHash("0x000000000000000000000000000000000000000000000000000000000000beef"),
	}
	for _, k := range testKeys {
		key, err := crypto.HexToECDSA(k)
		if err != nil {
			t.Fatal(err)
		}
		c.keys = append(c.keys, key)
		c.addrs = append(c.addrs, crypto.PubkeyToAddress(key.PublicKey))
	}
	chainID := cfg.ChainID
	sign := func(key int, inner types.TxData) *types.Transaction {
		tx, err := types.SignNewTx(c.keys[key], c.signer, inner)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	c.contract = crypto.CreateAddress(c.addrs[0], 1)
	to1 := c.addrs[1]
	to2 := c.addrs[2]

	// Genesis.
	genesis := c.makeBlock(t, nil, nil, nil, true)

	// Block 1: legacy, access list, contract creation (1559), set-code.
	auth, err := types.SignSetCode(c.keys[2], types.SetCodeAuthorization{
		ChainID: *uint256.MustFromBig(chainID), Address: c.contract, Nonce: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	b1txs := []*types.Transaction{
		sign(0, &types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(3 * gwei), Gas: 21000, To: &to1, Value: big.NewInt(1e18)}),
		sign(1, &types.AccessListTx{ChainID: chainID, Nonce: 0, GasPrice: big.NewInt(2 * gwei), Gas: 30000, To: &to2, Value: big.NewInt(5),
			AccessList: types.AccessList{{Address: to2, StorageKeys: []common.Hash{{1}}}, {Address: to1, StorageKeys: []common.Hash{}}}}),
		sign(0, &types.DynamicFeeTx{ChainID: chainID, Nonce: 1, GasTipCap: big.NewInt(2 * gwei), GasFeeCap: big.NewInt(50 * gwei), Gas: 100000,
			Data: []byte{0x60, 0x80, 0x60, 0x40}, AccessList: types.AccessList{}}),
		sign(2, &types.SetCodeTx{ChainID: uint256.MustFromBig(chainID), Nonce: 0, GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(3 * gwei),
			Gas: 60000, To: c.addrs[2], AuthList: []types.SetCodeAuthorization{auth}}),
	}
	b1logs := [][]*types.Log{nil, nil, {{Address: c.contract, Topics: []common.Hash{c.topicA}, Data: []byte{1, 2}}}, nil}
	block1 := c.makeBlock(t, genesis.Header, b1txs, b1logs, true)

	// Block 2: blob transaction and a call emitting two logs.
	blobHash := common.Hash{0x01, 0xaa}
	b2txs := []*types.Transaction{
		sign(1, &types.BlobTx{ChainID: uint256.MustFromBig(chainID), Nonce: 1, GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(100 * gwei),
			Gas: 21000, To: c.addrs[0], BlobFeeCap: uint256.NewInt(7), BlobHashes: []common.Hash{blobHash}}),
		sign(0, &types.DynamicFeeTx{ChainID: chainID, Nonce: 2, GasTipCap: big.NewInt(5 * gwei), GasFeeCap: big.NewInt(6 * gwei), Gas: 80000,
			To: &c.contract, Data: []byte{0xa9, 0x05, 0x9c, 0xbb}}),
	}
	b2logs := [][]*types.Log{nil, {
		{Address: c.contract, Topics: []common.Hash{c.topicA, c.topicB}, Data: []byte{3}},
		{Address: c.contract, Topics: []common.Hash{c.topicB}, Data: nil},
	}}
	c.makeBlock(t, block1.Header, b2txs, b2logs, true)

	// Open block 3.
	b3txs := []*types.Transaction{
		sign(2, &types.DynamicFeeTx{ChainID: chainID, Nonce: 1, GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(40 * gwei), Gas: 50000,
			To: &c.contract, Data: []byte{0x01}}),
	}
	b3logs := [][]*types.Log{{{Address: c.contract, Topics: []common.Hash{c.topicA}, Data: []byte{9}}}}
	c.makeBlock(t, c.blocks[2].Header, b3txs, b3logs, false)

	// A transaction waiting in the pool.
	c.poolTx = sign(0, &types.DynamicFeeTx{ChainID: chainID, Nonce: 3, GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(30 * gwei), Gas: 21000, To: &to1})
	c.txs[c.poolTx.Hash()] = &TxInfo{Tx: c.poolTx, Sender: c.addrs[0], Pending: true}
	return c
}

// makeBlock builds a block with fully derived receipts and registers it.
func (c *testChain) makeBlock(t testing.TB, parent *types.Header, txs []*types.Transaction, logs [][]*types.Log, sealed bool) *Block {
	t.Helper()
	number := uint64(0)
	baseFee := big.NewInt(gwei)
	parentHash := common.Hash{}
	time := uint64(1_700_000_000)
	excess := uint64(0)
	if parent != nil {
		number = parent.Number.Uint64() + 1
		time = parent.Time + 1
		baseFee = eip1559.CalcBaseFee(c.cfg, parent, time)
		parentHash = parent.Hash()
	}
	var (
		receipts []*types.Receipt
		senders  []common.Address
		cum      uint64
		blobGas  uint64
	)
	for i, tx := range txs {
		from, err := types.Sender(c.signer, tx)
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, from)
		gas := tx.Gas() - uint64(i)*7 // some gas left over
		cum += gas
		r := &types.Receipt{
			Type:              tx.Type(),
			Status:            types.ReceiptStatusSuccessful,
			CumulativeGasUsed: cum,
			TxHash:            tx.Hash(),
			GasUsed:           gas,
			EffectiveGasPrice: effectiveGasPrice(tx, baseFee),
			BlockNumber:       new(big.Int).SetUint64(number),
			TransactionIndex:  uint(i),
		}
		if tx.Type() == types.LegacyTxType || tx.Type() == types.AccessListTxType {
			r.EffectiveGasPrice = tx.GasPrice()
		}
		if i < len(logs) {
			r.Logs = logs[i]
		}
		if r.Logs == nil {
			r.Logs = []*types.Log{}
		}
		if tx.To() == nil {
			r.ContractAddress = crypto.CreateAddress(from, tx.Nonce())
		}
		if tx.Type() == types.BlobTxType {
			r.BlobGasUsed = tx.BlobGas()
			r.BlobGasPrice = big.NewInt(1)
			blobGas += tx.BlobGas()
		}
		r.Bloom = types.CreateBloom(r)
		receipts = append(receipts, r)
	}
	withdrawals := types.EmptyWithdrawalsHash
	beacon := common.Hash{0xbe, byte(number)}
	requests := types.EmptyRequestsHash
	header := &types.Header{
		ParentHash:       parentHash,
		UncleHash:        types.EmptyUncleHash,
		Coinbase:         common.HexToAddress("0x4200000000000000000000000000000000000011"),
		Root:             common.Hash{0x5e, byte(number)},
		TxHash:           types.DeriveSha(types.Transactions(txs), trie.NewStackTrie(nil)),
		ReceiptHash:      types.DeriveSha(types.Receipts(receipts), trie.NewStackTrie(nil)),
		Bloom:            types.MergeBloom(receipts),
		Difficulty:       new(big.Int),
		Number:           new(big.Int).SetUint64(number),
		GasLimit:         30_000_000,
		GasUsed:          cum,
		Time:             time,
		Extra:            []byte("kestrel"),
		MixDigest:        common.Hash{0x3a, byte(number)},
		BaseFee:          baseFee,
		WithdrawalsHash:  &withdrawals,
		BlobGasUsed:      &blobGas,
		ExcessBlobGas:    &excess,
		ParentBeaconRoot: &beacon,
		RequestsHash:     &requests,
	}
	hash := header.Hash()
	logIndex := uint(0)
	for i, r := range receipts {
		if sealed {
			r.BlockHash = hash
		}
		for _, l := range r.Logs {
			l.BlockNumber = number
			l.TxHash = txs[i].Hash()
			l.TxIndex = uint(i)
			if sealed {
				l.BlockHash = hash
			}
			l.BlockTimestamp = time
			l.Index = logIndex
			logIndex++
		}
	}
	b := &Block{
		Header:   header,
		Sealed:   sealed,
		Txs:      txs,
		Senders:  senders,
		Receipts: receipts,
		Size:     types.NewBlockWithHeader(header).WithBody(types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}).Size(),
	}
	if sealed {
		b.Hash = hash
		c.blocks = append(c.blocks, b)
	} else {
		c.pending = b
	}
	for i, tx := range txs {
		info := &TxInfo{Tx: tx, Sender: senders[i], BlockNumber: number, Sealed: sealed, Index: uint64(i), BaseFee: baseFee}
		if sealed {
			info.BlockHash = hash
		}
		c.txs[tx.Hash()] = info
		c.rcpts[tx.Hash()] = &ReceiptInfo{Receipt: receipts[i], Tx: tx, From: senders[i], Sealed: sealed}
	}
	return b
}

// fakeBackend serves a testChain.
type fakeBackend struct {
	c *testChain

	mu       sync.Mutex
	nonces   map[common.Address]uint64
	sent     [][]byte
	lastCall *CallMsg
	lastRef  BlockRef
	callOut  []byte
	callErr  error
	estimate uint64
	tip      *big.Int

	panicIn     string // name of a backend method that panics
	syncTimeout bool
	batchCalls  int
}

func newFakeBackend(t testing.TB) *fakeBackend {
	c := newTestChain(t)
	return &fakeBackend{
		c:        c,
		nonces:   map[common.Address]uint64{c.addrs[0]: 3, c.addrs[1]: 2, c.addrs[2]: 1},
		callOut:  []byte{0xca, 0xfe},
		estimate: 21512,
		tip:      big.NewInt(gwei),
	}
}

func (f *fakeBackend) maybePanic(name string) {
	if f.panicIn == name {
		panic("fake backend: " + name + " exploded")
	}
}

func (f *fakeBackend) ChainID() *big.Int                      { return f.c.cfg.ChainID }
func (f *fakeBackend) ChainConfig() *params.ChainConfig       { return f.c.cfg }
func (f *fakeBackend) ClientVersion() string                  { return "kestrel/v0.1.0-test/linux-amd64" }
func (f *fakeBackend) HeadNumber() uint64                     { return uint64(len(f.c.blocks) - 1) }
func (f *fakeBackend) GasCap() uint64                         { return 50_000_000 }
func (f *fakeBackend) SuggestTipCap(context.Context) *big.Int { return f.tip }

func (f *fakeBackend) resolve(ref BlockRef) (*Block, error) {
	c := f.c
	switch ref.Tag {
	case TagLatest, TagSafe, TagFinalized:
		return c.blocks[len(c.blocks)-1], nil
	case TagPending:
		return c.pending, nil
	case TagEarliest:
		return c.blocks[0], nil
	case TagNumber:
		if ref.Number < uint64(len(c.blocks)) {
			return c.blocks[ref.Number], nil
		}
		if ref.Number == uint64(len(c.blocks)) {
			return c.pending, nil
		}
	case TagHash:
		for _, b := range c.blocks {
			if b.Hash == ref.Hash {
				return b, nil
			}
		}
	}
	return nil, ErrUnknownBlock
}

func (f *fakeBackend) BlockByRef(_ context.Context, ref BlockRef) (*Block, error) {
	f.maybePanic("BlockByRef")
	return f.resolve(ref)
}

func (f *fakeBackend) HeaderByRef(_ context.Context, ref BlockRef) (*types.Header, common.Hash, error) {
	f.maybePanic("HeaderByRef")
	b, err := f.resolve(ref)
	if err != nil {
		return nil, common.Hash{}, err
	}
	return b.Header, b.Hash, nil
}

func (f *fakeBackend) Balance(_ context.Context, addr common.Address, ref BlockRef) (*uint256.Int, error) {
	f.maybePanic("Balance")
	b, err := f.resolve(ref)
	if err != nil {
		return nil, err
	}
	if addr == f.c.addrs[0] {
		v, _ := uint256.FromDecimal("1000000000000000000000000") // needs more than 64 bits
		return v, nil
	}
	return uint256.NewInt(b.Header.Number.Uint64() * 1000), nil
}

func (f *fakeBackend) Nonce(_ context.Context, addr common.Address, ref BlockRef) (uint64, error) {
	if _, err := f.resolve(ref); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nonces[addr]
	if ref.Tag == TagPending {
		n += 10
	}
	return n, nil
}

func (f *fakeBackend) Code(_ context.Context, addr common.Address, ref BlockRef) ([]byte, error) {
	if _, err := f.resolve(ref); err != nil {
		return nil, err
	}
	if addr == f.c.contract {
		return []byte{0x60, 0x80, 0x60, 0x40, 0x52}, nil
	}
	return nil, nil
}

func (f *fakeBackend) Storage(_ context.Context, addr common.Address, slot common.Hash, ref BlockRef) (common.Hash, error) {
	if _, err := f.resolve(ref); err != nil {
		return common.Hash{}, err
	}
	if addr == f.c.contract {
		return common.BigToHash(new(big.Int).Add(slot.Big(), big.NewInt(1))), nil
	}
	return common.Hash{}, nil
}

func (f *fakeBackend) Proof(_ context.Context, addr common.Address, slots []common.Hash, ref BlockRef) (*AccountResult, error) {
	if _, err := f.resolve(ref); err != nil {
		return nil, err
	}
	res := &AccountResult{
		Address:      addr,
		AccountProof: [][]byte{{0xf8, 0x51}, {0xe2, 0x10}},
		Balance:      uint256.NewInt(12345),
		CodeHash:     types.EmptyCodeHash,
		Nonce:        7,
		StorageHash:  types.EmptyRootHash,
	}
	for _, s := range slots {
		res.StorageProof = append(res.StorageProof, StorageResult{Key: s, Value: common.BigToHash(big.NewInt(0x42)), Proof: [][]byte{{0xab}}})
	}
	return res, nil
}

func (f *fakeBackend) Call(_ context.Context, msg *CallMsg, ref BlockRef) ([]byte, error) {
	f.maybePanic("Call")
	if _, err := f.resolve(ref); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastCall, f.lastRef = msg, ref
	f.mu.Unlock()
	return f.callOut, f.callErr
}

func (f *fakeBackend) EstimateGas(_ context.Context, msg *CallMsg, ref BlockRef) (uint64, error) {
	if _, err := f.resolve(ref); err != nil {
		return 0, err
	}
	f.mu.Lock()
	f.lastCall, f.lastRef = msg, ref
	f.mu.Unlock()
	if f.callErr != nil {
		return 0, f.callErr
	}
	return f.estimate, nil
}

func (f *fakeBackend) SendRawTransaction(_ context.Context, raw []byte) (common.Hash, error) {
	f.maybePanic("SendRawTransaction")
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return common.Hash{}, err
	}
	from, err := types.Sender(f.c.signer, tx)
	if err != nil {
		return common.Hash{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if state := f.nonces[from]; tx.Nonce() < state {
		return common.Hash{}, fmt.Errorf("%w: address %v, tx: %d state: %d", core.ErrNonceTooLow, from, tx.Nonce(), state)
	}
	f.sent = append(f.sent, raw)
	return tx.Hash(), nil
}

func (f *fakeBackend) SendRawTransactionSync(ctx context.Context, raw []byte, timeout time.Duration) (*ReceiptInfo, error) {
	if _, err := f.SendRawTransaction(ctx, raw); err != nil {
		return nil, err
	}
	if f.syncTimeout {
		return nil, ErrSyncTimeout
	}
	tx := new(types.Transaction)
	_ = tx.UnmarshalBinary(raw)
	from, _ := types.Sender(f.c.signer, tx)
	r := &types.Receipt{
		Type: tx.Type(), Status: 1, CumulativeGasUsed: 21000, GasUsed: 21000, TxHash: tx.Hash(),
		EffectiveGasPrice: big.NewInt(2 * gwei), BlockNumber: big.NewInt(3), TransactionIndex: 1, Logs: []*types.Log{},
	}
	r.Bloom = types.CreateBloom(r)
	return &ReceiptInfo{Receipt: r, Tx: tx, From: from, Sealed: false}, nil
}

func (f *fakeBackend) Transaction(_ context.Context, hash common.Hash) (*TxInfo, error) {
	f.maybePanic("Transaction")
	return f.c.txs[hash], nil
}

func (f *fakeBackend) Receipt(_ context.Context, hash common.Hash) (*ReceiptInfo, error) {
	return f.c.rcpts[hash], nil
}

// batchFake adds BatchSender.
type batchFake struct{ *fakeBackend }

func (b batchFake) SendRawTransactions(ctx context.Context, raws [][]byte) ([]common.Hash, []error) {
	b.mu.Lock()
	b.batchCalls++
	b.mu.Unlock()
	hashes := make([]common.Hash, len(raws))
	errs := make([]error, len(raws))
	for i, raw := range raws {
		hashes[i], errs[i] = b.SendRawTransaction(ctx, raw)
	}
	return hashes, errs
}

var errTest = errors.New("test error")
