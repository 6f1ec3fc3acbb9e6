package stream

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/store"
)

// marshal is the reference encoding a decoded mini-block must reproduce.
func marshal(t testing.TB, mb *chain.MiniBlock) []byte {
	t.Helper()
	b, err := mb.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

// checkRoundTrip encodes mb with enc, decodes it with a fresh decoder and
// compares the reference encodings.
func checkRoundTrip(t testing.TB, enc *Encoder, mb *chain.MiniBlock) []byte {
	t.Helper()
	want := marshal(t, mb)
	msg, err := enc.MiniBlock(mb)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if k, err := PeekKind(msg); err != nil || k != KindMiniBlock {
		t.Fatalf("PeekKind = %v, %v", k, err)
	}
	got, err := NewDecoder().MiniBlock(msg)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if gb := marshal(t, got); !bytes.Equal(gb, want) {
		for i := range min(len(got.Txs), len(mb.Txs)) {
			a, _ := mb.Txs[i].MarshalBinary()
			b, _ := got.Txs[i].MarshalBinary()
			if !bytes.Equal(a, b) {
				t.Errorf("transaction %d (type %d) differs:\n want %x\n got  %x", i, mb.Txs[i].Type(), a, b)
			}
		}
		t.Fatalf("round trip differs: %d vs %d bytes", len(gb), len(want))
	}
	return msg
}

// TestCodecRoundTripRandom is the property test: random mini-blocks of every
// shape decode to the same MarshalBinary bytes, and encoding is deterministic
// for encoders with the same history.
func TestCodecRoundTripRandom(t *testing.T) {
	enc1, enc2 := NewEncoder(), NewEncoder()
	g := newGen(1)
	for i := range 600 {
		mb := g.miniBlock()
		ref := marshal(t, mb)
		var back chain.MiniBlock
		if err := back.UnmarshalBinary(ref); err != nil {
			t.Fatalf("case %d: generator made an invalid mini-block: %v", i, err)
		}
		msg := checkRoundTrip(t, enc1, mb)
		msg2, err := enc2.MiniBlock(mb)
		if err != nil || !bytes.Equal(msg, msg2) {
			t.Fatalf("case %d: encoders with the same history disagree (%v)", i, err)
		}
		// The decoded mini-block, decoded again from its own encoding, is the
		// same: the decoder is a function of the bytes alone.
		if i%50 == 0 {
			if len(msg) > len(ref)+64 {
				t.Logf("case %d: %d bytes encoded, %d RLP", i, len(msg), len(ref))
			}
		}
	}
}

// TestCodecRoundTripDecoded runs the round trip on mini-blocks that went
// through chain.MiniBlock.UnmarshalBinary first, as a replica holds them.
func TestCodecRoundTripDecoded(t *testing.T) {
	enc := NewEncoder()
	g := newGen(2)
	for range 200 {
		var mb chain.MiniBlock
		if err := mb.UnmarshalBinary(marshal(t, g.miniBlock())); err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, enc, &mb)
	}
}

func TestCodecTransactionKinds(t *testing.T) {
	key, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	to := common.HexToAddress("0x00000000000000000000000000000000000e2020")
	chainID := big.NewInt(1337)
	data := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(to[:], 32)...)
	data = append(data, common.LeftPadBytes([]byte{1, 2, 3}, 32)...)
	al := types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}, mapKey(to, 3)}}}
	sign := func(s types.Signer, inner types.TxData) *types.Transaction {
		tx, err := types.SignNewTx(key, s, inner)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	latest := types.LatestSignerForChainID(chainID)
	auth, err := types.SignSetCode(key, types.SetCodeAuthorization{ChainID: *uint2(1337), Address: to, Nonce: 7})
	if err != nil {
		t.Fatal(err)
	}
	txs := map[string]*types.Transaction{
		"legacy pre-155": sign(types.HomesteadSigner{}, &types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1e9), Gas: 21000, To: &to, Value: big.NewInt(1)}),
		"legacy 155":     sign(types.NewEIP155Signer(chainID), &types.LegacyTx{Nonce: 2, GasPrice: big.NewInt(1e9), Gas: 21000, To: &to, Data: data}),
		"legacy create":  sign(types.NewEIP155Signer(chainID), &types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(1e9), Gas: 100000, Data: []byte{0x60, 0}}),
		"2930":           sign(latest, &types.AccessListTx{ChainID: chainID, Nonce: 4, GasPrice: big.NewInt(1e9), Gas: 50000, To: &to, AccessList: al}),
		"1559":           sign(latest, &types.DynamicFeeTx{ChainID: chainID, Nonce: 5, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e11), Gas: 80000, To: &to, Data: data, AccessList: al}),
		"1559 create":    sign(latest, &types.DynamicFeeTx{ChainID: chainID, Nonce: 6, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e11), Gas: 80000, Data: data}),
		"7702": sign(latest, &types.SetCodeTx{ChainID: uint2(1337), Nonce: 7, GasTipCap: uint2(1), GasFeeCap: uint2(1e11), Gas: 80000, To: to,
			AuthList: []types.SetCodeAuthorization{auth, {Address: to, V: 27}}}),
		"unsigned 1559": types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Gas: 21000, To: &to}),
	}
	enc := NewEncoder()
	for name, tx := range txs {
		t.Run(name, func(t *testing.T) {
			mb := &chain.MiniBlock{Env: chain.BlockEnv{BaseFee: big.NewInt(7)}, Txs: []*types.Transaction{tx}, Senders: []common.Address{to},
				Receipts: []*chain.Receipt{{Status: 1, GasUsed: 21000, CumulativeGasUsed: 21000}}}
			checkRoundTrip(t, enc, mb)
		})
	}
}

func TestCodecHeaderRoundTrip(t *testing.T) {
	enc, dec := NewEncoder(), NewDecoder()
	g := newGen(3)
	valid := 0
	for i := range 400 {
		sh := g.header()
		ref, err := rlp.EncodeToBytes(sh.Header)
		if err != nil {
			t.Fatal(err)
		}
		if err := rlp.DecodeBytes(ref, new(types.Header)); err != nil {
			continue // a nil hash before a set optional field: RLP itself cannot carry it
		}
		valid++
		msg, err := enc.Header(sh)
		if err != nil {
			t.Fatalf("case %d: encode: %v", i, err)
		}
		got, err := dec.Header(msg)
		if err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if got.Header.Hash() != sh.Header.Hash() || !bytes.Equal(got.Signature, sh.Signature) {
			gb, _ := rlp.EncodeToBytes(got.Header)
			t.Fatalf("case %d: header differs:\n want %x\n got  %x", i, ref, gb)
		}
		rec := &store.BlockRecord{Header: sh.Header, Signature: sh.Signature, FirstMini: g.r.Uint64() >> g.n(64), LastMini: g.r.Uint64() >> g.n(64)}
		rmsg, err := enc.BlockRecord(rec)
		if err != nil {
			t.Fatalf("case %d: encode record: %v", i, err)
		}
		grec, err := dec.BlockRecord(rmsg)
		if err != nil || grec.Header.Hash() != rec.Header.Hash() || !bytes.Equal(grec.Signature, rec.Signature) ||
			grec.FirstMini != rec.FirstMini || grec.LastMini != rec.LastMini {
			t.Fatalf("case %d: block record differs (%v)", i, err)
		}
		if gh, err := dec.Header(rmsg); err != nil || gh.Header.Hash() != rec.Header.Hash() {
			t.Fatalf("case %d: block record read as a header: %v", i, err)
		}
		if _, err := dec.MiniBlock(msg); err == nil || !errors.Is(err, ErrBadMessage) {
			t.Fatalf("a header decoded as a mini-block: %v", err)
		}
	}
	if valid < 300 {
		t.Fatalf("only %d valid headers", valid)
	}
}

// TestCodecHeaderSize: a sealed header of an empty block is mostly known hashes.
func TestCodecHeaderSize(t *testing.T) {
	env := chain.BlockEnv{Number: 1000, Time: 1_700_000_000, BaseFee: big.NewInt(1e9), GasLimit: 60_000_000, Random: common.Hash{1}}
	h := chain.SealHeader(env, common.Hash{2}, common.Hash{3}, nil, nil)
	key, _ := crypto.GenerateKey()
	sh, err := chain.SignHeader(h, key)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := NewEncoder().Header(sh)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := rlp.EncodeToBytes(h)
	t.Logf("empty-block header: %d bytes (RLP %d + signature 65)", len(msg), len(ref))
	if len(msg) >= len(ref)+65 {
		t.Fatalf("header message of %d bytes is not smaller than its RLP and signature", len(msg))
	}
}

func uint2(x uint64) *uint256.Int { return uint256.NewInt(x) }
