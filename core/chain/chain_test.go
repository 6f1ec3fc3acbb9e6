package chain

import (
	"bytes"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

func TestDevAccountsMatchTheWellKnownMnemonic(t *testing.T) {
	want := []string{
		"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
		"0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
		"0x90F79bf6EB2c4f870365E785982E1f101E93b906",
		"0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
		"0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
		"0x976EA74026E726554dB657fA54763abd0C3a0aa9",
		"0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
		"0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
		"0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
	}
	accs := DevAccounts()
	for i, w := range want {
		if accs[i].Address != common.HexToAddress(w) {
			t.Errorf("account %d = %s, want %s", i, accs[i].Address, w)
		}
	}
	g := DevGenesis()
	if g.ChainID != 31337 || len(g.Alloc) != 12 || g.Alloc[accs[0].Address].Balance.Cmp(DevBalance) != 0 {
		t.Fatalf("dev genesis %+v", g)
	}
}

func TestGenesisJSONRoundTrip(t *testing.T) {
	g := DevGenesis()
	g.Fork = ForkOsaka
	data, err := g.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Genesis
	if err := back.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalJSON()
	if !bytes.Equal(data, again) {
		t.Fatalf("round trip differs:\n%s\n%s", data, again)
	}
	if !back.ChainConfig().IsOsaka(big.NewInt(1), 1) {
		t.Fatal("osaka not active")
	}
	for name, mutate := range map[string]func(*Genesis){
		"unknown fork":     func(g *Genesis) { g.Fork = "london" },
		"tiny gas limit":   func(g *Genesis) { g.GasLimit = 1 },
		"zero base fee":    func(g *Genesis) { g.BaseFee = new(big.Int) },
		"long extra data":  func(g *Genesis) { g.ExtraData = make([]byte, 33) },
		"negative balance": func(g *Genesis) { g.Alloc[common.Address{1}] = Account{Balance: big.NewInt(-1)} },
	} {
		g := DevGenesis()
		mutate(g)
		if err := g.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown field": `{"chainId":5,"bogus":1}`,
		"not json":      `{"chainId":`,
		"bad balance":   `{"alloc":{"0x0000000000000000000000000000000000000001":{"balance":"lots"}}}`,
	} {
		path := filepath.Join(dir, "g.json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadGenesis(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	path := filepath.Join(dir, "ok.json")
	os.WriteFile(path, []byte(`{"chainId":"0x10","alloc":{"0x0000000000000000000000000000000000000001":{"balance":"1000"}}}`), 0o644)
	loaded, err := LoadGenesis(path)
	if err != nil || loaded.ChainID != 16 || loaded.Fork != ForkPrague || loaded.Alloc[common.Address{19: 1}].Balance.Int64() != 1000 {
		t.Fatalf("load: %+v %v", loaded, err)
	}
}

func TestNextBaseFee(t *testing.T) {
	g := DevGenesis()
	base := big.NewInt(1_000_000_000)
	if got := g.NextBaseFee(g.GasLimit/2, g.GasLimit, base); got.Cmp(base) != 0 {
		t.Fatalf("at target: %v", got)
	}
	if got := g.NextBaseFee(g.GasLimit, g.GasLimit, base); got.Cmp(big.NewInt(1_125_000_000)) != 0 {
		t.Fatalf("full block: %v", got)
	}
	if got := g.NextBaseFee(0, g.GasLimit, base); got.Cmp(big.NewInt(875_000_000)) != 0 {
		t.Fatalf("empty block: %v", got)
	}
	g.MinBaseFee = big.NewInt(900_000_000)
	if got := g.NextBaseFee(0, g.GasLimit, base); got.Cmp(g.MinBaseFee) != 0 {
		t.Fatalf("floor: %v", got)
	}
}

func randomDiff(rng *rand.Rand) *StateDiff {
	d := &StateDiff{}
	for i := 0; i < rng.Intn(6); i++ {
		var a AccountDiff
		rng.Read(a.Address[:])
		switch rng.Intn(4) {
		case 0:
			a.Deleted, a.StorageReset = true, true
		default:
			a.Nonce = rng.Uint64()
			a.Balance.SetUint64(rng.Uint64())
			a.CodeHash = types.EmptyCodeHash
			if rng.Intn(3) == 0 {
				a.Code = []byte{byte(rng.Intn(256)), 0x60, 0x00}
				a.CodeHash = crypto.Keccak256Hash(a.Code)
			}
			a.StorageReset = rng.Intn(5) == 0
			for j := 0; j < rng.Intn(4); j++ {
				var s SlotDiff
				rng.Read(s.Key[:])
				if rng.Intn(3) > 0 {
					rng.Read(s.Value[:])
				}
				a.Storage = append(a.Storage, s)
			}
		}
		d.Accounts = append(d.Accounts, a)
	}
	d.Sort()
	return d
}

func TestStateDiffRoundTripAndCorruption(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		d := randomDiff(rng)
		enc, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back StateDiff
		if err := back.UnmarshalBinary(enc); err != nil {
			t.Fatalf("decode: %v", err)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(enc, again) {
			t.Fatal("re-encoding differs")
		}
		// Any flipped bit is caught by the checksum.
		bad := bytes.Clone(enc)
		bad[rng.Intn(len(bad))] ^= 1 << uint(rng.Intn(8))
		if err := back.UnmarshalBinary(bad); err == nil {
			t.Fatal("corrupted diff decoded")
		}
	}
	// Out of order accounts are refused even with a valid checksum.
	d := &StateDiff{Accounts: []AccountDiff{{Address: common.Address{2}}, {Address: common.Address{1}}}}
	enc, _ := d.MarshalBinary()
	var back StateDiff
	if err := back.UnmarshalBinary(enc); err == nil {
		t.Fatal("unsorted diff accepted")
	}
	// A deleted account carrying values is refused.
	d = &StateDiff{Accounts: []AccountDiff{{Address: common.Address{1}, Deleted: true, Nonce: 1}}}
	enc, _ = d.MarshalBinary()
	if err := back.UnmarshalBinary(enc); err == nil {
		t.Fatal("deleted account with a nonce accepted")
	}
}

// TestMergeDiffsEqualsSequentialApplication checks MergeDiffs against applying
// the diffs one after another to a map model.
func TestMergeDiffsEqualsSequentialApplication(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	addrs := []common.Address{{1}, {2}, {3}}
	keys := []common.Hash{{1}, {2}, {3}}
	type acct struct {
		nonce   uint64
		storage map[common.Hash]common.Hash
	}
	apply := func(m map[common.Address]*acct, d *StateDiff) {
		for _, a := range d.Accounts {
			if a.Deleted {
				delete(m, a.Address)
				continue
			}
			cur := m[a.Address]
			if cur == nil || a.StorageReset {
				st := map[common.Hash]common.Hash{}
				if cur != nil && !a.StorageReset {
					st = cur.storage
				}
				cur = &acct{storage: st}
				m[a.Address] = cur
			}
			cur.nonce = a.Nonce
			for _, s := range a.Storage {
				if s.Value == (common.Hash{}) {
					delete(cur.storage, s.Key)
				} else {
					cur.storage[s.Key] = s.Value
				}
			}
		}
	}
	for round := 0; round < 500; round++ {
		var diffs []*StateDiff
		for i := 0; i < 1+rng.Intn(4); i++ {
			d := &StateDiff{}
			for _, addr := range addrs {
				if rng.Intn(2) == 0 {
					continue
				}
				a := AccountDiff{Address: addr, Nonce: uint64(rng.Intn(5)), CodeHash: types.EmptyCodeHash}
				switch rng.Intn(5) {
				case 0:
					a = AccountDiff{Address: addr, Deleted: true, StorageReset: true}
				case 1:
					a.StorageReset = true
				}
				if !a.Deleted {
					for _, k := range keys {
						if rng.Intn(2) == 0 {
							a.Storage = append(a.Storage, SlotDiff{Key: k, Value: common.Hash{byte(rng.Intn(3))}})
						}
					}
				}
				d.Accounts = append(d.Accounts, a)
			}
			d.Sort()
			diffs = append(diffs, d)
		}
		seq, merged := map[common.Address]*acct{}, map[common.Address]*acct{}
		// A pre-existing state the diffs build on.
		for _, addr := range addrs {
			seq[addr] = &acct{storage: map[common.Hash]common.Hash{keys[0]: {9}}}
			merged[addr] = &acct{storage: map[common.Hash]common.Hash{keys[0]: {9}}}
		}
		for _, d := range diffs {
			apply(seq, d)
		}
		apply(merged, MergeDiffs(diffs))
		for _, addr := range addrs {
			a, b := seq[addr], merged[addr]
			if (a == nil) != (b == nil) {
				t.Fatalf("round %d: existence of %s differs", round, addr)
			}
			if a == nil {
				continue
			}
			if a.nonce != b.nonce || len(a.storage) != len(b.storage) {
				t.Fatalf("round %d: %s differs: %+v vs %+v", round, addr, a, b)
			}
			for k, v := range a.storage {
				if b.storage[k] != v {
					t.Fatalf("round %d: slot differs", round)
				}
			}
		}
	}
}

func testMiniBlock(t testing.TB) *MiniBlock {
	key := DevAccounts()[0].Key
	to := common.Address{0xaa}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(DevChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(DevChainID), Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(5)})
	if err != nil {
		t.Fatal(err)
	}
	mb := &MiniBlock{Index: 7, IndexInBlock: 2, TimestampMs: 1_700_000_000_123,
		Env:            BlockEnv{Number: 4, Time: 1_700_000_000, BaseFee: big.NewInt(1e9), GasLimit: 30_000_000, Random: RandomFor(DevChainID, 4)},
		ParentHashCall: true, ParentHash: common.Hash{1},
		Txs: []*types.Transaction{tx}, Senders: []common.Address{DevAccounts()[0].Address},
		Receipts: []*Receipt{{Status: 1, CumulativeGasUsed: 21000, GasUsed: 21000, Logs: []*types.Log{{Address: to, Topics: []common.Hash{{2}}, Data: []byte{3}}}}},
		Diff:     &StateDiff{Accounts: []AccountDiff{{Address: to, Balance: *uint256.NewInt(5), CodeHash: types.EmptyCodeHash}}},
	}
	if err := mb.Sign(DevAccounts()[9].Key); err != nil {
		t.Fatal(err)
	}
	return mb
}

func TestMiniBlockRoundTripAndSignature(t *testing.T) {
	mb := testMiniBlock(t)
	enc, err := mb.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back MiniBlock
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	signer, err := back.Signer()
	if err != nil || signer != DevAccounts()[9].Address {
		t.Fatalf("signer %s %v", signer, err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(enc, again) {
		t.Fatal("re-encoding differs")
	}
	// Changing a field breaks the signature.
	back.Env.BaseFee = big.NewInt(2e9)
	if s, _ := back.Signer(); s == signer {
		t.Fatal("signature still matches after a change")
	}
	// Truncations and bit flips are refused, never panic.
	for i := 0; i < len(enc); i += 7 {
		if err := new(MiniBlock).UnmarshalBinary(enc[:i]); err == nil {
			t.Fatalf("truncated mini-block (%d bytes) decoded", i)
		}
	}
}

func FuzzMiniBlock(f *testing.F) {
	enc, _ := testMiniBlock(f).MarshalBinary()
	f.Add(enc)
	f.Add([]byte{1, 0xc0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var mb MiniBlock
		if err := mb.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := mb.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded mini-block does not encode: %v", err)
		}
		var back MiniBlock
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded mini-block does not decode: %v", err)
		}
		_, _ = mb.Signer()
	})
}

func FuzzStateDiff(f *testing.F) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 5; i++ {
		enc, _ := randomDiff(rng).MarshalBinary()
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d StateDiff
		if err := d.UnmarshalBinary(data); err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("decoded diff is invalid: %v", err)
		}
		enc, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back StateDiff
		if err := back.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-encoded diff does not decode: %v", err)
		}
	})
}

func TestDeriveReceiptsMatchesFull(t *testing.T) {
	mb := testMiniBlock(t)
	txs := []*types.Transaction{mb.Txs[0], mb.Txs[0], mb.Txs[0]}
	senders := []common.Address{mb.Senders[0], mb.Senders[0], mb.Senders[0]}
	stored := []*Receipt{mb.Receipts[0], {Status: 0, CumulativeGasUsed: 42000, GasUsed: 21000}, mb.Receipts[0]}
	full := FullReceipts(mb.Env, common.Hash{7}, txs, senders, stored)
	for from := 0; from < 3; from++ {
		part := DeriveReceipts(mb.Env, common.Hash{7}, txs, senders, stored, from, 3)
		for i, r := range part {
			a, _ := full[from+i].MarshalJSON()
			b, _ := r.MarshalJSON()
			if !bytes.Equal(a, b) {
				t.Fatalf("from %d, receipt %d differs:\n%s\n%s", from, i, a, b)
			}
		}
	}
	if full[2].Logs[0].Index != 1 || full[2].TransactionIndex != 2 {
		t.Fatalf("positions: log %d tx %d", full[2].Logs[0].Index, full[2].TransactionIndex)
	}
}

// TestEncodeSignedMatches checks the one-pass encoding against MarshalBinary
// and SigningHash: signed and unsigned, small and with a multi-byte list length.
func TestEncodeSignedMatches(t *testing.T) {
	signed := testMiniBlock(t)
	unsigned := *signed
	unsigned.Signature = nil
	big := *signed
	for len(big.Txs) < 300 {
		big.Txs = append(big.Txs, signed.Txs[0])
		big.Senders = append(big.Senders, signed.Senders[0])
		big.Receipts = append(big.Receipts, signed.Receipts[0])
	}
	for name, mb := range map[string]*MiniBlock{"signed": signed, "unsigned": &unsigned, "large": &big} {
		raw, h, err := mb.EncodeSigned()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantRaw, err := mb.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		wantH, err := mb.SigningHash()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, wantRaw) || h != wantH {
			t.Fatalf("%s: EncodeSigned differs from MarshalBinary/SigningHash", name)
		}
	}
}
