package mempool

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

func TestErrorMessages(t *testing.T) {
	// The exact texts RPC clients know from go-ethereum.
	for err, msg := range map[error]string{
		ErrNonceTooLow:        "nonce too low",
		ErrNonceTooHigh:       "nonce too high",
		ErrInsufficientFunds:  "insufficient funds for gas * price + value",
		ErrIntrinsicGas:       "intrinsic gas too low",
		ErrReplaceUnderpriced: "replacement transaction underpriced",
		ErrUnderpriced:        "transaction underpriced",
		ErrOversizedData:      "oversized data",
		ErrGasLimit:           "exceeds block gas limit",
		ErrInvalidChainId:     "invalid chain id for signer",
		ErrTxGasPriceTooLow:   "transaction gas price below minimum",
		ErrEmptyAuthList:      "set code tx must have at least one authorization tuple",
		ErrAlreadyKnown:       "already known",
		ErrTxPoolOverflow:     "txpool is full",
		ErrTxTypeNotSupported: "transaction type not supported",
		ErrTipAboveFeeCap:     "max priority fee per gas higher than max fee per gas",
		ErrFeeCapVeryHigh:     "max fee per gas higher than 2^256-1",
		ErrNegativeValue:      "negative value",
		ErrNonceMax:           "nonce has max value",
		ErrInvalidSig:         "invalid transaction v, r, s values",
	} {
		if err.Error() != msg {
			t.Errorf("error %q, want %q", err, msg)
		}
	}
	if !errors.Is(ErrEmptyAuthList, core.ErrEmptyAuthList) {
		t.Error("ErrEmptyAuthList does not wrap core.ErrEmptyAuthList")
	}
}

func TestConfigCheck(t *testing.T) {
	var c Config
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if c.MaxTxSize != 131072 || c.AccountSlots != 1024 || c.GlobalSlots != 100000 || c.PriceBump != 10 || c.MaxNonceGap != 64 || c.MinTipCap.Sign() != 0 || c.RecoverWorkers < 1 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	for _, bad := range []Config{
		{AccountSlots: -1},
		{GlobalSlots: 10, AccountSlots: 20},
		{MinTipCap: big.NewInt(-1)},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if _, err := New(Config{}, Env{}, newTestState()); err == nil {
		t.Error("nil chain config accepted")
	}
}

type rejectCase struct {
	name  string
	chain *params.ChainConfig // default testConfig(false)
	cfg   Config
	env   func(*Env)
	setup func(t *testing.T, p *Pool, st *testState, k testKey)
	raw   func(t *testing.T, k testKey) []byte
	want  error // nil: accepted
	also  error // another error the result must match
}

func TestRejections(t *testing.T) {
	big1 := func(v int64) *big.Int { return big.NewInt(v) }
	dynData := func(nonce, gas uint64, to *common.Address, data []byte) *types.DynamicFeeTx {
		return &types.DynamicFeeTx{ChainID: testChainID, Nonce: nonce, GasTipCap: big1(gwei), GasFeeCap: big1(10 * gwei), Gas: gas, To: to, Data: data}
	}
	signed := func(data func(k testKey) types.TxData) func(t *testing.T, k testKey) []byte {
		return func(t *testing.T, k testKey) []byte { return encode(t, sign(t, k, data(k))) }
	}
	nonzero := bytes.Repeat([]byte{0xab}, 1000)
	auth := func(t *testing.T, k testKey) types.SetCodeAuthorization {
		a, err := types.SignSetCode(k.key, types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(testChainID), Address: recipient, Nonce: 1})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	setCode := func(auths func(t *testing.T, k testKey) []types.SetCodeAuthorization) func(t *testing.T, k testKey) []byte {
		return func(t *testing.T, k testKey) []byte {
			return encode(t, sign(t, k, &types.SetCodeTx{
				ChainID: uint256.MustFromBig(testChainID), GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(10 * gwei),
				Gas: 100_000, To: recipient, Value: new(uint256.Int), AuthList: auths(t, k),
			}))
		}
	}
	oneAuth := func(t *testing.T, k testKey) []types.SetCodeAuthorization {
		return []types.SetCodeAuthorization{auth(t, k)}
	}

	cases := []rejectCase{
		{name: "valid 1559", raw: signed(func(testKey) types.TxData { return dynData(0, 21000, &recipient, nil) })},
		{name: "valid legacy eip155", raw: signed(func(testKey) types.TxData {
			return &types.LegacyTx{Nonce: 0, GasPrice: big1(2 * gwei), Gas: 21000, To: &recipient}
		})},
		{name: "valid 2930", raw: signed(func(testKey) types.TxData {
			return &types.AccessListTx{ChainID: testChainID, GasPrice: big1(2 * gwei), Gas: 30000, To: &recipient,
				AccessList: types.AccessList{{Address: recipient, StorageKeys: []common.Hash{{1}}}}}
		})},
		{name: "valid 7702", raw: setCode(oneAuth)},
		{name: "oversized", raw: signed(func(testKey) types.TxData {
			return dynData(0, 10_000_000, &recipient, make([]byte, 132_000))
		}), want: ErrOversizedData},
		{name: "oversized small limit", cfg: Config{MaxTxSize: 100}, raw: signed(func(testKey) types.TxData {
			return dynData(0, 21000, &recipient, make([]byte, 100))
		}), want: ErrOversizedData},
		{name: "blob type", raw: signed(func(testKey) types.TxData {
			return &types.BlobTx{ChainID: uint256.MustFromBig(testChainID), GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(10 * gwei),
				Gas: 21000, To: recipient, Value: new(uint256.Int), BlobFeeCap: uint256.NewInt(gwei), BlobHashes: []common.Hash{{1}}}
		}), want: ErrTxTypeNotSupported},
		{name: "deposit type", raw: func(t *testing.T, k testKey) []byte {
			return encode(t, types.NewTx(&types.DepositTx{From: k.addr, To: &recipient, Value: big1(1), Gas: 21000}))
		}, want: ErrTxTypeNotSupported},
		{name: "7702 before prague", chain: cancunConfig(), raw: setCode(oneAuth), want: ErrTxTypeNotSupported},
		{name: "7702 empty auth list", raw: setCode(func(*testing.T, testKey) []types.SetCodeAuthorization { return nil }), want: ErrEmptyAuthList},
		{name: "wrong chain id 1559", raw: func(t *testing.T, k testKey) []byte {
			tx, err := types.SignNewTx(k.key, types.LatestSignerForChainID(big1(1)), &types.DynamicFeeTx{ChainID: big1(1), GasTipCap: big1(gwei), GasFeeCap: big1(10 * gwei), Gas: 21000, To: &recipient})
			if err != nil {
				t.Fatal(err)
			}
			return encode(t, tx)
		}, want: ErrInvalidSender, also: ErrInvalidChainId},
		{name: "wrong chain id legacy", raw: func(t *testing.T, k testKey) []byte {
			tx, err := types.SignNewTx(k.key, types.NewEIP155Signer(big1(1)), &types.LegacyTx{GasPrice: big1(2 * gwei), Gas: 21000, To: &recipient})
			if err != nil {
				t.Fatal(err)
			}
			return encode(t, tx)
		}, want: ErrInvalidSender, also: ErrInvalidChainId},
		{name: "unprotected legacy", raw: func(t *testing.T, k testKey) []byte {
			tx, err := types.SignNewTx(k.key, types.HomesteadSigner{}, &types.LegacyTx{GasPrice: big1(2 * gwei), Gas: 21000, To: &recipient})
			if err != nil {
				t.Fatal(err)
			}
			return encode(t, tx)
		}, want: ErrUnprotectedTx},
		{name: "invalid signature", raw: func(t *testing.T, k testKey) []byte {
			sig := make([]byte, 65) // r = s = 0
			tx, err := types.NewTx(dynData(0, 21000, &recipient, nil)).WithSignature(testSigner, sig)
			if err != nil {
				t.Fatal(err)
			}
			return encode(t, tx)
		}, want: ErrInvalidSender, also: ErrInvalidSig},
		{name: "tip above fee cap", raw: signed(func(testKey) types.TxData {
			d := dynData(0, 21000, &recipient, nil)
			d.GasTipCap = big1(11 * gwei)
			return d
		}), want: ErrTipAboveFeeCap},
		{name: "fee cap over 256 bits", raw: signed(func(testKey) types.TxData {
			return &types.LegacyTx{GasPrice: new(big.Int).Lsh(big1(1), 257), Gas: 21000, To: &recipient}
		}), want: ErrFeeCapVeryHigh},
		{name: "gas above block limit", raw: signed(func(testKey) types.TxData {
			return dynData(0, 30_000_001, &recipient, nil)
		}), want: ErrGasLimit},
		{name: "eip-7825 cap in osaka", chain: testConfig(true), env: func(e *Env) { e.GasLimit = 60_000_000 },
			raw: signed(func(testKey) types.TxData { return dynData(0, params.MaxTxGas+1, &recipient, nil) }), want: ErrGasLimitTooHigh},
		{name: "eip-7825 cap inactive before osaka", env: func(e *Env) { e.GasLimit = 60_000_000 },
			raw: signed(func(testKey) types.TxData { return dynData(0, params.MaxTxGas+1, &recipient, nil) })},
		{name: "osaka at cap", chain: testConfig(true), env: func(e *Env) { e.GasLimit = 60_000_000 },
			raw: signed(func(testKey) types.TxData { return dynData(0, params.MaxTxGas, &recipient, nil) })},
		{name: "intrinsic gas", raw: signed(func(testKey) types.TxData { return dynData(0, 20999, &recipient, nil) }), want: ErrIntrinsicGas},
		{name: "intrinsic gas create", raw: signed(func(testKey) types.TxData { return dynData(0, 52000, nil, []byte{1}) }), want: ErrIntrinsicGas},
		{name: "floor data gas", raw: signed(func(testKey) types.TxData {
			return dynData(0, 40_000, &recipient, nonzero) // intrinsic 37000, floor 61000
		}), want: ErrFloorDataGas},
		{name: "floor data gas met", raw: signed(func(testKey) types.TxData { return dynData(0, 61_000, &recipient, nonzero) })},
		{name: "init code too large", raw: signed(func(testKey) types.TxData {
			return dynData(0, 10_000_000, nil, make([]byte, params.MaxInitCodeSize+1))
		}), want: ErrMaxInitCodeSizeExceeded},
		{name: "init code at limit", raw: signed(func(testKey) types.TxData {
			return dynData(0, 10_000_000, nil, make([]byte, params.MaxInitCodeSize))
		})},
		{name: "nonce max", raw: signed(func(testKey) types.TxData { return dynData(math.MaxUint64, 21000, &recipient, nil) }), want: ErrNonceMax},
		{name: "tip below minimum", cfg: Config{MinTipCap: big1(2 * gwei)},
			raw: signed(func(testKey) types.TxData { return dynData(0, 21000, &recipient, nil) }), want: ErrTxGasPriceTooLow},
		{name: "nonce too low", setup: func(t *testing.T, p *Pool, st *testState, k testKey) { st.setNonce(k.addr, 5) },
			raw: signed(func(testKey) types.TxData { return dynData(4, 21000, &recipient, nil) }), want: ErrNonceTooLow},
		{name: "nonce gap at limit", setup: func(t *testing.T, p *Pool, st *testState, k testKey) { st.setNonce(k.addr, 5) },
			raw: signed(func(testKey) types.TxData { return dynData(5+64, 21000, &recipient, nil) })},
		{name: "nonce too high", setup: func(t *testing.T, p *Pool, st *testState, k testKey) { st.setNonce(k.addr, 5) },
			raw: signed(func(testKey) types.TxData { return dynData(5+65, 21000, &recipient, nil) }), want: ErrNonceTooHigh},
		{name: "insufficient funds", setup: func(t *testing.T, p *Pool, st *testState, k testKey) {
			st.setBalance(k.addr, uint256.NewInt(21000*10*gwei-1))
		}, raw: signed(func(testKey) types.TxData { return dynData(0, 21000, &recipient, nil) }), want: ErrInsufficientFunds},
		{name: "funds exact", setup: func(t *testing.T, p *Pool, st *testState, k testKey) {
			st.setBalance(k.addr, uint256.NewInt(21000*10*gwei))
		}, raw: signed(func(testKey) types.TxData { return dynData(0, 21000, &recipient, nil) })},
		{name: "insufficient funds with pooled txs", setup: func(t *testing.T, p *Pool, st *testState, k testKey) {
			st.setBalance(k.addr, uint256.NewInt(2*21000*10*gwei-1))
			mustAdd(t, p, sign(t, k, dynData(0, 21000, &recipient, nil)))
		}, raw: signed(func(testKey) types.TxData { return dynData(1, 21000, &recipient, nil) }), want: ErrInsufficientFunds},
		{name: "already known", setup: func(t *testing.T, p *Pool, st *testState, k testKey) {
			mustAdd(t, p, sign(t, k, dynData(0, 21000, &recipient, nil)))
		}, raw: signed(func(testKey) types.TxData { return dynData(0, 21000, &recipient, nil) }), want: ErrAlreadyKnown},
		{name: "account slots", cfg: Config{AccountSlots: 2}, setup: func(t *testing.T, p *Pool, st *testState, k testKey) {
			mustAdd(t, p, sign(t, k, dynData(0, 21000, &recipient, nil)), sign(t, k, dynData(1, 21000, &recipient, nil)))
		}, raw: signed(func(testKey) types.TxData { return dynData(2, 21000, &recipient, nil) }), want: ErrAccountLimitExceeded},
		{name: "global slots", cfg: Config{AccountSlots: 2, GlobalSlots: 2}, setup: func(t *testing.T, p *Pool, st *testState, k testKey) {
			o := newKey(t)
			mustAdd(t, p, sign(t, o, dynData(0, 21000, &recipient, nil)), sign(t, o, dynData(1, 21000, &recipient, nil)))
		}, raw: signed(func(testKey) types.TxData { return dynData(0, 21000, &recipient, nil) }), want: ErrTxPoolOverflow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := tc.chain
			if chain == nil {
				chain = testConfig(false)
			}
			env := testEnv(chain)
			if tc.env != nil {
				tc.env(&env)
			}
			st := newTestState()
			p, err := New(tc.cfg, env, st)
			if err != nil {
				t.Fatal(err)
			}
			k := newKey(t)
			if tc.setup != nil {
				tc.setup(t, p, st, k)
			}
			raw := tc.raw(t, k)
			err = addRaw(p, raw)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			case tc.also != nil && !errors.Is(err, tc.also):
				t.Fatalf("error %v, want it to match %v too", err, tc.also)
			case tc.want != nil && !strings.HasPrefix(err.Error(), tc.want.Error()):
				t.Fatalf("message %q should start with %q", err, tc.want)
			}
			// The same transaction through the non-RPC path (Add of a plain
			// types.Transaction) must give the same verdict.
			if tc.want != ErrOversizedData && tc.want != ErrAlreadyKnown && tc.setup == nil {
				p2, err := New(tc.cfg, env, newTestState())
				if err != nil {
					t.Fatal(err)
				}
				tx := new(types.Transaction)
				if err := tx.UnmarshalBinary(raw); err != nil {
					t.Fatal(err)
				}
				err = p2.Add([]*Tx{{Tx: tx}})[0]
				if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("Add of types.Transaction: %v, want %v", err, tc.want)
				}
			}
			checkInvariants(t, p)
		})
	}
}

func TestMalformed(t *testing.T) {
	p, _ := newTestPool(t, Config{}, testConfig(false))
	k := newKey(t)
	good := encode(t, dyn(t, k, 0, 10, 1))
	legacy := encode(t, sign(t, k, &types.LegacyTx{GasPrice: big.NewInt(gwei), Gas: 21000, To: &recipient}))
	inputs := map[string][]byte{
		"empty":            {},
		"nil":              nil,
		"single byte":      {0x02},
		"bad list":         {0xf8, 0x01},
		"typed empty list": {0x02, 0xc0},
		"unknown type":     append([]byte{0x05}, good[1:]...),
		"truncated":        good[:len(good)-1],
		"trailing":         append(bytes.Clone(good), 0x00),
		"legacy trailing":  append(bytes.Clone(legacy), 0x80),
		"legacy truncated": legacy[:len(legacy)-3],
		"junk":             []byte("hello world, this is not a transaction"),
	}
	for name, raw := range inputs {
		txs, errs := p.DecodeBatch([][]byte{raw})
		if errs[0] == nil || txs[0] != nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	// A batch mixes good and bad items.
	txs, errs := p.DecodeBatch([][]byte{good, {0x01}, legacy})
	if errs[0] != nil || errs[1] == nil || errs[2] != nil || txs[0] == nil || txs[1] != nil || txs[2] == nil {
		t.Fatalf("mixed batch: %v", errs)
	}
	if txs[0].Sender != k.addr || txs[2].Sender != k.addr {
		t.Fatal("wrong sender")
	}
	// Raw is copied.
	buf := bytes.Clone(good)
	txs, _ = p.DecodeBatch([][]byte{buf})
	buf[5] ^= 0xff
	if !bytes.Equal(txs[0].Raw, good) {
		t.Fatal("Raw aliases the input buffer")
	}
	// nil items in Add.
	if err := p.Add([]*Tx{nil, {}})[0]; !errors.Is(err, ErrNilTx) {
		t.Fatalf("nil Tx: %v", err)
	}
}

func TestNegativeValue(t *testing.T) {
	// Only possible for transactions built in-process, not decoded ones.
	p, _ := newTestPool(t, Config{}, testConfig(false))
	k := newKey(t)
	tx := sign(t, k, &types.DynamicFeeTx{ChainID: testChainID, GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(10 * gwei), Gas: 21000, To: &recipient, Value: big.NewInt(-1)})
	if err := p.Add([]*Tx{{Tx: tx}})[0]; !errors.Is(err, ErrNegativeValue) {
		t.Fatalf("error %v, want %v", err, ErrNegativeValue)
	}
}

func TestUntrustedSenderIgnored(t *testing.T) {
	// A caller-made Tx with a forged Sender gets its sender recovered.
	p, _ := newTestPool(t, Config{}, testConfig(false))
	k, other := newKey(t), newKey(t)
	tx := dyn(t, k, 0, 10, 1)
	forged := &Tx{Tx: tx, Sender: other.addr, Hash: common.Hash{1}, Raw: []byte{1, 2, 3}, Size: 3}
	if err := p.Add([]*Tx{forged})[0]; err != nil {
		t.Fatal(err)
	}
	got := p.Get(tx.Hash())
	if got == nil || got.Sender != k.addr || !bytes.Equal(got.Raw, encode(t, tx)) {
		t.Fatalf("pooled tx %+v", got)
	}
	if forged.Sender != other.addr {
		t.Fatal("caller's Tx modified")
	}
}

func TestParallelDecode(t *testing.T) {
	p1, _ := newTestPool(t, Config{RecoverWorkers: 1}, testConfig(false))
	p8, _ := newTestPool(t, Config{RecoverWorkers: 8}, testConfig(false))
	var raws [][]byte
	var senders []common.Address
	for i := range 64 {
		k := newKey(t)
		raws = append(raws, encode(t, dyn(t, k, 0, 10, 1)))
		senders = append(senders, k.addr)
		if i%7 == 0 {
			raws = append(raws, []byte{0xde, 0xad})
			senders = append(senders, common.Address{})
		}
	}
	for _, p := range []*Pool{p1, p8} {
		txs, errs := p.DecodeBatch(raws)
		for i := range raws {
			if (senders[i] == common.Address{}) {
				if errs[i] == nil {
					t.Fatalf("item %d: junk accepted", i)
				}
				continue
			}
			if errs[i] != nil || txs[i].Sender != senders[i] {
				t.Fatalf("item %d: %v", i, errs[i])
			}
		}
		for i, err := range p.Add(txs) {
			if (err == nil) != (senders[i] != common.Address{}) {
				t.Fatalf("add item %d: %v", i, err)
			}
		}
		// The second time round they are known, before recovery.
		_, errs = p.DecodeBatch(raws[:1])
		if errs[0] != ErrAlreadyKnown {
			t.Fatalf("known tx: %v", errs[0])
		}
	}
}

// TestGethMessages checks the exact texts (and their precedence) of refusals
// that go-ethereum's pool words in its own way, as eth_sendRawTransaction
// shows them.
func TestGethMessages(t *testing.T) {
	price := big.NewInt(gwei)
	k := newKey(t)
	other := types.LatestSignerForChainID(big.NewInt(1))
	wrongChain := func(gas uint64) []byte {
		tx, err := types.SignNewTx(k.key, other, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: price, GasFeeCap: price, Gas: gas, To: &recipient})
		if err != nil {
			t.Fatal(err)
		}
		return encode(t, tx)
	}
	setCode := func(gas uint64, tip *uint256.Int) []byte {
		return encode(t, sign(t, k, &types.SetCodeTx{ChainID: uint256.MustFromBig(testChainID), GasTipCap: tip, GasFeeCap: uint256.NewInt(10 * params.GWei),
			Gas: gas, To: recipient, Value: new(uint256.Int)}))
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		raw  []byte
		want string
	}{
		{"gas above the block gas limit", Config{}, encode(t, sign(t, k, &types.DynamicFeeTx{ChainID: testChainID, GasTipCap: price, GasFeeCap: price, Gas: 30_000_001, To: &recipient})),
			"exceeds block gas limit"},
		{"wrong chain id", Config{}, wrongChain(21_000), "invalid sender: invalid chain id for signer: have 1 want 167001"},
		{"wrong chain id, gas above the block gas limit", Config{}, wrongChain(30_000_001), "exceeds block gas limit"},
		{"empty set-code list", Config{}, setCode(50_000, uint256.NewInt(params.GWei)), "set code tx must have at least one authorization tuple"},
		{"empty set-code list, intrinsic gas too low", Config{}, setCode(20_000, uint256.NewInt(params.GWei)), "intrinsic gas too low: gas 20000, minimum needed 21000"},
		{"empty set-code list, tip too low", Config{MinTipCap: big.NewInt(2 * params.GWei)}, setCode(50_000, uint256.NewInt(params.GWei)),
			"transaction gas price below minimum: gas tip cap 1000000000, minimum needed 2000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newTestPool(t, tc.cfg, testConfig(false))
			err := addRaw(p, tc.raw)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
