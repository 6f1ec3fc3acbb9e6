package sequencer_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/gethclient"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/sequencer"
)

// startSequencer runs an in-process sequencer on a loopback port.
func startSequencer(t *testing.T, dir string, mutate func(*sequencer.Config)) (*sequencer.Sequencer, *ethclient.Client, *gethrpc.Client) {
	t.Helper()
	cfg := sequencer.DefaultConfig()
	cfg.DataDir = dir
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.BlockInterval = 250 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx := context.Background()
	seq, err := sequencer.New(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("new sequencer: %v", err)
	}
	if err := seq.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	rc, err := gethrpc.Dial("http://" + seq.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rc.Close()
		if err := seq.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return seq, ethclient.NewClient(rc), rc
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitReceipt(t *testing.T, ec *ethclient.Client, h common.Hash) *types.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		r, err := ec.TransactionReceipt(ctx, h)
		if err == nil {
			return r
		}
		if !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("receipt %s: %v", h, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s", h)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type wallet struct {
	key   *ecdsa.PrivateKey
	addr  common.Address
	nonce uint64
}

func devWallet(i int) *wallet {
	a := chain.DevAccounts()[i]
	return &wallet{key: a.Key, addr: a.Address}
}

var chainID = big.NewInt(chain.DevChainID)

func (w *wallet) sign(t *testing.T, inner types.TxData) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(w.key, types.LatestSignerForChainID(chainID), inner)
	if err != nil {
		t.Fatal(err)
	}
	w.nonce++
	return tx
}

func (w *wallet) dynamic(t *testing.T, to *common.Address, value *big.Int, gas uint64, data []byte) *types.Transaction {
	return w.sign(t, &types.DynamicFeeTx{ChainID: chainID, Nonce: w.nonce, GasTipCap: big.NewInt(params.GWei),
		GasFeeCap: big.NewInt(10 * params.GWei), Gas: gas, To: to, Value: value, Data: data})
}

func TestEndToEndWithEthclient(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), nil)
	ctx := context.Background()

	id, err := ec.ChainID(ctx)
	if err != nil || id.Uint64() != chain.DevChainID {
		t.Fatalf("chain id %v %v", id, err)
	}
	alice, bob := devWallet(0), devWallet(1)
	if alice.addr != common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266") {
		t.Fatalf("dev account 0 is %s", alice.addr)
	}
	bal, err := ec.BalanceAt(ctx, alice.addr, nil)
	if err != nil || bal.Cmp(chain.DevBalance) != 0 {
		t.Fatalf("alice balance %v %v", bal, err)
	}

	// Fund a fresh account with each transaction type.
	fresh, _ := crypto.GenerateKey()
	freshAddr := crypto.PubkeyToAddress(fresh.PublicKey)
	oneEth := big.NewInt(params.Ether)
	legacy := alice.sign(t, &types.LegacyTx{Nonce: alice.nonce, GasPrice: big.NewInt(10 * params.GWei), Gas: 21000, To: &freshAddr, Value: oneEth})
	al := alice.sign(t, &types.AccessListTx{ChainID: chainID, Nonce: alice.nonce, GasPrice: big.NewInt(10 * params.GWei), Gas: 30000, To: &freshAddr, Value: oneEth,
		AccessList: types.AccessList{{Address: freshAddr}}})
	dyn := alice.dynamic(t, &freshAddr, oneEth, 21000, nil)
	for _, tx := range []*types.Transaction{legacy, al, dyn} {
		if err := ec.SendTransaction(ctx, tx); err != nil {
			t.Fatalf("send type %d: %v", tx.Type(), err)
		}
	}
	for _, tx := range []*types.Transaction{legacy, al, dyn} {
		r := waitReceipt(t, ec, tx.Hash())
		if r.Status != types.ReceiptStatusSuccessful || r.Type != tx.Type() || r.BlockHash == (common.Hash{}) {
			t.Fatalf("receipt of type %d: %+v", tx.Type(), r)
		}
	}
	if got, _ := ec.BalanceAt(ctx, freshAddr, nil); got.Cmp(new(big.Int).Mul(oneEth, big.NewInt(3))) != 0 {
		t.Fatalf("fresh balance %v", got)
	}
	if n, _ := ec.PendingNonceAt(ctx, alice.addr); n != 3 {
		t.Fatalf("pending nonce %d", n)
	}

	// Synchronous send (EIP-7966) returns the receipt from the durable mini-block,
	// and the pending state shows it at once.
	sync := alice.dynamic(t, &bob.addr, big.NewInt(12345), 21000, nil)
	start := time.Now()
	r, err := ec.SendTransactionSync(ctx, sync, nil)
	if err != nil {
		t.Fatalf("sync send: %v", err)
	}
	if r.TxHash != sync.Hash() || r.Status != 1 || r.GasUsed != 21000 {
		t.Fatalf("sync receipt %+v", r)
	}
	t.Logf("sync send answered in %v", time.Since(start))
	pend, err := ec.PendingBalanceAt(ctx, bob.addr)
	if err != nil || pend.Cmp(new(big.Int).Add(chain.DevBalance, big.NewInt(12345))) != 0 {
		t.Fatalf("pending balance of bob %v %v", pend, err)
	}

	// Deploy an ERC-20, move tokens, read balances, receipts and logs.
	supply := new(big.Int).Mul(big.NewInt(1_000_000), oneEth)
	deploy, err := contracts.ERC20DeployData("Kestrel Token", "KST", supply)
	if err != nil {
		t.Fatal(err)
	}
	gas, err := ec.EstimateGas(ctx, ethereum.CallMsg{From: alice.addr, Data: deploy})
	if err != nil {
		t.Fatalf("estimate deploy: %v", err)
	}
	deployTx := alice.dynamic(t, nil, nil, gas, deploy)
	if err := ec.SendTransaction(ctx, deployTx); err != nil {
		t.Fatal(err)
	}
	dr := waitReceipt(t, ec, deployTx.Hash())
	token := dr.ContractAddress
	if dr.Status != 1 || token != crypto.CreateAddress(alice.addr, deployTx.Nonce()) {
		t.Fatalf("deploy receipt %+v", dr)
	}
	if code, _ := ec.CodeAt(ctx, token, nil); !bytesEqual(code, contracts.ERC20().DeployedBytecode) {
		t.Fatalf("deployed code differs (%d bytes)", len(code))
	}
	amount := big.NewInt(777)
	xfer := contracts.ERC20TransferData(bob.addr, amount)
	xgas, err := ec.EstimateGas(ctx, ethereum.CallMsg{From: alice.addr, To: &token, Data: xfer})
	if err != nil {
		t.Fatal(err)
	}
	xferTx := alice.dynamic(t, &token, nil, xgas, xfer)
	if err := ec.SendTransaction(ctx, xferTx); err != nil {
		t.Fatal(err)
	}
	xr := waitReceipt(t, ec, xferTx.Hash())
	if xr.Status != 1 || len(xr.Logs) != 1 {
		t.Fatalf("transfer receipt %+v", xr)
	}
	ev, err := contracts.ParseERC20Transfer(xr.Logs[0])
	if err != nil || ev.From != alice.addr || ev.To != bob.addr || ev.Value.Cmp(amount) != 0 {
		t.Fatalf("transfer event %+v %v", ev, err)
	}
	out, err := ec.CallContract(ctx, ethereum.CallMsg{To: &token, Data: contracts.ERC20BalanceOfData(bob.addr)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := contracts.ERC20UnpackUint256(out); v.Cmp(amount) != 0 {
		t.Fatalf("bob token balance %v", v)
	}
	logs, err := ec.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), Addresses: []common.Address{token},
		Topics: [][]common.Hash{{contracts.ERC20TransferTopic}}})
	if err != nil {
		t.Fatal(err)
	}
	// The mint and the transfer.
	if len(logs) != 2 || logs[1].TxHash != xferTx.Hash() || logs[1].BlockHash != xr.BlockHash {
		t.Fatalf("logs %+v", logs)
	}
	blk, err := ec.BlockByHash(ctx, xr.BlockHash)
	if err != nil {
		t.Fatalf("block by hash: %v", err)
	}
	if blk.Transaction(xferTx.Hash()) == nil || blk.Hash() != xr.BlockHash {
		t.Fatal("block does not hold the transfer or its hash differs")
	}

	// A revert reason reaches the caller as go-ethereum's data error.
	tooMuch := contracts.ERC20TransferData(alice.addr, supply)
	_, err = ec.CallContract(ctx, ethereum.CallMsg{From: bob.addr, To: &token, Data: tooMuch}, nil)
	var de gethrpc.DataError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "ERC20: transfer amount exceeds balance") {
		t.Fatalf("revert error %v", err)
	}
	if _, err := ec.EstimateGas(ctx, ethereum.CallMsg{From: bob.addr, To: &token, Data: tooMuch}); err == nil ||
		!strings.Contains(err.Error(), "exceeds balance") {
		t.Fatalf("estimate of a reverting call: %v", err)
	}

	// eth_getProof verifies against the sealed block's state root.
	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	gc := gethclient.New(rc)
	slot := common.Hash{} // not a real ERC-20 slot: proves absence as well
	proof, err := gc.GetProof(ctx, token, []string{slot.Hex()}, head.Number)
	if err != nil {
		t.Fatalf("get proof: %v", err)
	}
	db := memorydb.New()
	for _, node := range proof.AccountProof {
		blob := hexutil.MustDecode(node)
		db.Put(crypto.Keccak256(blob), blob)
	}
	val, err := trie.VerifyProof(head.Root, crypto.Keccak256(token[:]), db)
	if err != nil || len(val) == 0 {
		t.Fatalf("account proof does not verify: %v", err)
	}
	var acct types.StateAccount
	if err := decodeAccount(val, &acct); err != nil {
		t.Fatal(err)
	}
	if acct.Root != proof.StorageHash || common.BytesToHash(acct.CodeHash) != proof.CodeHash || acct.Nonce != proof.Nonce {
		t.Fatalf("proof fields disagree with the proven account")
	}
	sdb := memorydb.New()
	for _, node := range proof.StorageProof[0].Proof {
		blob := hexutil.MustDecode(node)
		sdb.Put(crypto.Keccak256(blob), blob)
	}
	if _, err := trie.VerifyProof(acct.Root, crypto.Keccak256(slot[:]), sdb); err != nil {
		t.Fatalf("storage proof does not verify: %v", err)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestRestartContinuesChain stops a node and starts it again on the same data
// directory: the same chain, head and receipts, and it keeps producing blocks.
func TestRestartContinuesChain(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	alice := devWallet(0)
	bob := devWallet(1)
	var hashes []common.Hash
	var head *types.Header
	func() {
		seq, ec, _ := startSequencer(t, dir, nil)
		for i := 0; i < 5; i++ {
			tx := alice.dynamic(t, &bob.addr, big.NewInt(int64(i+1)), 21000, nil)
			if _, err := ec.SendTransactionSync(ctx, tx, nil); err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, tx.Hash())
		}
		waitReceipt(t, ec, hashes[len(hashes)-1])
		var err error
		if head, err = ec.HeaderByNumber(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := seq.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	_, ec, _ := startSequencer(t, dir, nil)
	same, err := ec.HeaderByNumber(ctx, head.Number)
	if err != nil || same.Hash() != head.Hash() {
		t.Fatalf("block %v after restart: %v %v", head.Number, same, err)
	}
	for _, h := range hashes {
		if r := waitReceipt(t, ec, h); r.Status != 1 {
			t.Fatalf("receipt %s after restart: %+v", h, r)
		}
	}
	if n, _ := ec.PendingNonceAt(ctx, alice.addr); n != 5 {
		t.Fatalf("nonce after restart %d", n)
	}
	tx := alice.dynamic(t, &bob.addr, big.NewInt(1), 21000, nil)
	if _, err := ec.SendTransactionSync(ctx, tx, nil); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	later := waitReceipt(t, ec, tx.Hash())
	if later.BlockNumber.Cmp(head.Number) <= 0 {
		t.Fatalf("new transaction in block %v, not after %v", later.BlockNumber, head.Number)
	}
	if _, err := sequencer.Verify(ctx, dir); err == nil {
		t.Fatal("Verify opened a store the node holds")
	}
}

func TestMetricsEndpoint(t *testing.T) {
	seq, ec, _ := startSequencer(t, "", func(c *sequencer.Config) { c.MetricsAddr = "127.0.0.1:0" })
	alice, bob := devWallet(0), devWallet(1)
	if _, err := ec.SendTransactionSync(context.Background(), alice.dynamic(t, &bob.addr, big.NewInt(1), 21000, nil), nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + seq.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"kestrel_transactions_total 1", "kestrel_miniblocks_total", "kestrel_miniblock_fsync_seconds_bucket"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestCustomGenesisFeeParameters runs a chain from a genesis file with its own
// EIP-1559 parameters; eth_feeHistory's next base fee follows them.
func TestCustomGenesisFeeParameters(t *testing.T) {
	dir := t.TempDir()
	g := chain.DevGenesis()
	g.ChainID = 777
	g.Fork = chain.ForkOsaka
	g.GasLimit = 1_000_000
	g.BaseFeeChangeDenominator = 2
	g.ElasticityMultiplier = 4
	data, err := g.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/genesis.json"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, ec, _ := startSequencer(t, dir+"/data", func(c *sequencer.Config) { c.GenesisFile = path })
	ctx := context.Background()
	if id, _ := ec.ChainID(ctx); id.Uint64() != 777 {
		t.Fatalf("chain id %v", id)
	}
	// The Osaka chain executes transactions signed for its own chain id.
	key := chain.DevAccounts()[2]
	to := common.Address{0xbb}
	tx, err := types.SignNewTx(key.Key, types.LatestSignerForChainID(big.NewInt(777)), &types.DynamicFeeTx{ChainID: big.NewInt(777),
		GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(10 * params.GWei), Gas: 21000, To: &to, Value: big.NewInt(9)})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ec.SendTransactionSync(ctx, tx, nil); err != nil || r.Status != 1 {
		t.Fatalf("osaka transfer: %v %+v", err, r)
	}
	// Wait for a couple of empty blocks: each halves the base fee (denominator 2
	// with a target of a quarter of the limit).
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := ec.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no blocks")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h1, _ := ec.HeaderByNumber(ctx, big.NewInt(1))
	h2, _ := ec.HeaderByNumber(ctx, big.NewInt(2))
	if want := g.NextBaseFee(h1.GasUsed, h1.GasLimit, h1.BaseFee); h2.BaseFee.Cmp(want) != 0 || h2.BaseFee.Cmp(h1.BaseFee) >= 0 {
		t.Fatalf("block 2 base fee %v, want %v", h2.BaseFee, want)
	}
	fh, err := ec.FeeHistory(ctx, 2, big.NewInt(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	h3, _ := ec.HeaderByNumber(ctx, big.NewInt(3))
	if last := fh.BaseFee[len(fh.BaseFee)-1]; last.Cmp(h3.BaseFee) != 0 {
		t.Fatalf("fee history next base fee %v, block 3 has %v", last, h3.BaseFee)
	}
}

// TestOldBlocksComeFromTheStore keeps one block in memory; older blocks,
// transactions and receipts are read back from the pebble log.
func TestOldBlocksComeFromTheStore(t *testing.T) {
	_, ec, _ := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.RecentBlocks = 1; c.BlockInterval = 50 * time.Millisecond })
	ctx := context.Background()
	alice, bob := devWallet(0), devWallet(1)
	tx := alice.dynamic(t, &bob.addr, big.NewInt(5), 21000, nil)
	if err := ec.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	r := waitReceipt(t, ec, tx.Hash())
	waitBlocksPast(t, ec, r.BlockNumber.Uint64()+3)
	again, err := ec.TransactionReceipt(ctx, tx.Hash())
	if err != nil || again.BlockHash != r.BlockHash || again.Status != 1 {
		t.Fatalf("old receipt %+v %v", again, err)
	}
	blk, err := ec.BlockByNumber(ctx, r.BlockNumber)
	if err != nil || blk.Hash() != r.BlockHash || blk.Transaction(tx.Hash()) == nil {
		t.Fatalf("old block %v", err)
	}
	got, _, err := ec.TransactionByHash(ctx, tx.Hash())
	if err != nil || got.Hash() != tx.Hash() {
		t.Fatalf("old transaction %v", err)
	}
}

// waitBlocksPast waits until the head block number is above n.
func waitBlocksPast(t *testing.T, ec *ethclient.Client, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		head, _ := ec.BlockNumber(context.Background())
		if head > n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("chain did not advance")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
