package sequencer_test

import (
	"bytes"
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/gethclient"

	"github.com/kestrel-l2/kestrel/sequencer"
)

// counterInit deploys a contract that, on any call, adds one to slot 0, stores
// it and returns it: eth_call returns slot 0 plus one at the block asked.
const counterInit = "0x600e8060095f395ff3" + "5f54600101805f555f5260205ff3"

// TestLatestReadsMatchBlockNumberAndHash: while transactions keep changing
// balances and storage, eth_getBalance, eth_getStorageAt and eth_call at
// "latest" answer as at the head's number and hash, and as its proof; a change
// in the open block shows at "pending" and not at "latest".
func TestLatestReadsMatchBlockNumberAndHash(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.BlockInterval = 200 * time.Millisecond })
	gc := gethclient.New(rc)
	ctx, cancel := context.WithCancel(context.Background())

	alice, bob := devWallet(0), devWallet(1)
	deploy := alice.dynamic(t, nil, new(big.Int), 200_000, hexutil.MustDecode(counterInit))
	r, err := ec.SendTransactionSync(ctx, deploy, nil)
	if err != nil || r.Status != 1 {
		t.Fatalf("deploy: %v %v", r, err)
	}
	counter := r.ContractAddress
	for {
		n, err := ec.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= r.BlockNumber.Uint64() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Traffic: transfers to bob and counter increments, one mini-block apart.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: the sender stops, then it is waited for
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			tx := alice.dynamic(t, &bob.addr, big.NewInt(int64(1+i)), 21_000, nil)
			if i%2 == 1 {
				tx = alice.dynamic(t, &counter, new(big.Int), 100_000, nil)
			}
			if _, err := ec.SendTransactionSync(ctx, tx, nil); err != nil {
				if ctx.Err() == nil {
					t.Errorf("send: %v", err)
				}
				return
			}
		}
	}()

	call := ethereum.CallMsg{To: &counter}
	same := 0
	start, _ := ec.BlockNumber(ctx)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		n1, err := ec.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		balLatest, err1 := ec.BalanceAt(ctx, bob.addr, nil)
		slotLatest, err2 := ec.StorageAt(ctx, counter, common.Hash{}, nil)
		callLatest, err3 := ec.CallContract(ctx, call, nil)
		n2, err4 := ec.BlockNumber(ctx)
		if err := firstErr(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		num := new(big.Int).SetUint64(n1)
		h, err := ec.HeaderByNumber(ctx, num)
		if err != nil {
			t.Fatal(err)
		}
		hash := h.Hash()
		balNum, err1 := ec.BalanceAt(ctx, bob.addr, num)
		balHash, err2 := ec.BalanceAtHash(ctx, bob.addr, hash)
		slotNum, err3 := ec.StorageAt(ctx, counter, common.Hash{}, num)
		callNum, err4 := ec.CallContract(ctx, call, num)
		callHash, err5 := ec.CallContractAtHash(ctx, call, hash)
		proof, err6 := gc.GetProof(ctx, counter, []string{common.Hash{}.Hex()}, num)
		bobProof, err7 := gc.GetProof(ctx, bob.addr, nil, num)
		if err := firstErr(err1, err2, err3, err4, err5, err6, err7); err != nil {
			t.Fatal(err)
		}
		if balNum.Cmp(balHash) != 0 || !bytes.Equal(callNum, callHash) {
			t.Fatalf("block %d: balance %v by number, %v by hash; call %x, %x", n1, balNum, balHash, callNum, callHash)
		}
		// The proof comes from the trie: the flat reads must agree with it.
		if bobProof.Balance.Cmp(balNum) != 0 || proof.StorageProof[0].Value.Cmp(new(big.Int).SetBytes(slotNum)) != 0 {
			t.Fatalf("block %d: balance %v, proof %v; slot %x, proof %v", n1, balNum, bobProof.Balance, slotNum, proof.StorageProof[0].Value)
		}
		if want := new(big.Int).Add(new(big.Int).SetBytes(slotNum), big.NewInt(1)); new(big.Int).SetBytes(callNum).Cmp(want) != 0 {
			t.Fatalf("block %d: call %x, slot %x", n1, callNum, slotNum)
		}
		if n1 == n2 {
			// "latest" was n1 throughout.
			same++
			if balLatest.Cmp(balNum) != 0 || !bytes.Equal(slotLatest, slotNum) || !bytes.Equal(callLatest, callNum) {
				t.Fatalf("block %d: latest balance %v slot %x call %x, by number %v %x %x", n1, balLatest, slotLatest, callLatest, balNum, slotNum, callNum)
			}
		}
		if same >= 20 && n2 >= start+5 {
			break
		}
	}
	cancel()
	wg.Wait()
	if same < 20 {
		t.Fatalf("only %d comparisons with a stable head", same)
	}

	// A balance changed in the open block: "pending" shows it, "latest" the
	// sealed value until the block is sealed.
	ctx = context.Background()
	carol := devWallet(2) // alice's last nonce may not have been used
	seen := false
	for i := 0; i < 20 && !seen; i++ {
		key, _ := crypto.GenerateKey()
		fresh := crypto.PubkeyToAddress(key.PublicKey)
		r, err := ec.SendTransactionSync(ctx, carol.dynamic(t, &fresh, big.NewInt(12345), 21_000, nil), nil)
		if err != nil || r.Status != 1 {
			t.Fatalf("send: %v %v", r, err)
		}
		pending, err1 := ec.PendingBalanceAt(ctx, fresh)
		latest, err2 := ec.BalanceAt(ctx, fresh, nil)
		head, err3 := ec.BlockNumber(ctx)
		if err := firstErr(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if pending.Int64() != 12345 {
			t.Fatalf("pending balance %v", pending)
		}
		if head < r.BlockNumber.Uint64() {
			seen = true
			if latest.Sign() != 0 {
				t.Fatalf("latest (block %d) shows the open block %d's balance %v", head, r.BlockNumber, latest)
			}
		}
		// Sealed: "latest" has it.
		for {
			n, err := ec.BlockNumber(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n >= r.BlockNumber.Uint64() {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if b, err := ec.BalanceAt(ctx, fresh, nil); err != nil || b.Int64() != 12345 {
			t.Fatalf("latest balance after the seal %v %v", b, err)
		}
	}
	if !seen {
		t.Fatal("never read while the block was open")
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
