package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/sequencer"
)

// node is a `kestrel sequencer` subprocess.
type node struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	log  *os.File
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startNode(t *testing.T, dir string, args ...string) *node {
	t.Helper()
	addr := freePort(t)
	return startProcess(t, filepath.Join(dir, "node.log"), addr, append([]string{"sequencer", "--datadir", filepath.Join(dir, "data"), "--http.addr", addr,
		"--sequencer.block-interval", "200ms", "--sequencer.snapshot-every", "5", "--log.level", "info", "--stream.listen", "127.0.0.1:0"}, args...))
}

// startProcess runs this test binary as `kestrel ARGS...`, logging to
// logPath, and waits until its JSON-RPC server on addr answers.
func startProcess(t *testing.T, logPath, addr string, args []string) *node {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KESTREL_TEST_RUN_MAIN=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, url: "http://" + addr, done: make(chan error, 1), log: logf}
	go func() { n.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ec, err := ethclient.Dial(n.url)
		if err == nil {
			_, err = ec.ChainID(context.Background())
			ec.Close()
			if err == nil {
				return n
			}
		}
		select {
		case err := <-n.done:
			n.done <- err
			out, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited during start: %v\n%s", args[0], err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start (see %s)", args[0], logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) kill(t *testing.T) {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.log.Close()
}

func (n *node) stop(t *testing.T) {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("node exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		n.kill(t)
		t.Error("node did not stop on SIGTERM")
	}
	n.log.Close()
}

// acked is a transaction the node acknowledged with a receipt.
type acked struct {
	receipt *types.Receipt
}

// TestCrashRecovery kills a loaded sequencer with SIGKILL at random moments and
// checks after each restart that every acknowledged transaction is there with the
// same receipt; at the end it re-executes the whole log and compares every root.
func TestCrashRecovery(t *testing.T) {
	rounds := 4
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var mu sync.Mutex
	ack := make(map[common.Hash]acked)
	accounts := chain.DevAccounts()[:6]
	signer := types.LatestSignerForChainID(big.NewInt(chain.DevChainID))
	var reverter common.Address

	for round := 0; round < rounds; round++ {
		n := startNode(t, dir)
		ec, err := ethclient.Dial(n.url)
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			// A contract whose calls write storage and emit logs.
			acc := accounts[0]
			tx, _ := types.SignNewTx(acc.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DevChainID), Nonce: 0,
				GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(100 * params.GWei), Gas: 1_000_000, Data: contracts.ReverterDeployData()})
			r, err := ec.SendTransactionSync(context.Background(), tx, nil)
			if err != nil || r.Status != 1 {
				t.Fatalf("deploy: %v %+v", err, r)
			}
			reverter = r.ContractAddress
			ack[tx.Hash()] = acked{receipt: r}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i, acc := range accounts {
			wg.Add(1)
			go func(i int, acc chain.DevAccount) {
				defer wg.Done()
				nonce, err := ec.PendingNonceAt(ctx, acc.Address)
				if err != nil {
					return
				}
				for k := 0; ctx.Err() == nil; k++ {
					inner := &types.DynamicFeeTx{ChainID: big.NewInt(chain.DevChainID), Nonce: nonce, GasTipCap: big.NewInt(1),
						GasFeeCap: big.NewInt(100 * params.GWei), Gas: 21000, To: &accounts[(i+1)%len(accounts)].Address, Value: big.NewInt(int64(k + 1))}
					if k%3 == 0 {
						inner.To, inner.Value, inner.Gas = &reverter, nil, 200_000
						inner.Data = contracts.ReverterStoreData(big.NewInt(int64(round*1_000_000+k)), []byte(fmt.Sprintf("r%d", round)))
					}
					tx, _ := types.SignNewTx(acc.Key, signer, inner)
					r, err := ec.SendTransactionSync(ctx, tx, nil)
					if err != nil {
						if strings.Contains(err.Error(), "nonce too low") || strings.Contains(err.Error(), "already known") {
							if nonce, err = ec.PendingNonceAt(ctx, acc.Address); err != nil {
								return
							}
							continue
						}
						return // the node died
					}
					mu.Lock()
					ack[tx.Hash()] = acked{receipt: r}
					mu.Unlock()
					nonce++
				}
			}(i, acc)
		}
		time.Sleep(time.Duration(300+rng.Intn(1200)) * time.Millisecond)
		n.kill(t)
		cancel()
		wg.Wait()
		ec.Close()
		mu.Lock()
		t.Logf("round %d: killed; %d transactions acknowledged so far", round, len(ack))
		mu.Unlock()
	}

	n := startNode(t, dir)
	ec, err := ethclient.Dial(n.url)
	if err != nil {
		t.Fatal(err)
	}
	// Let the recovered open block seal, then check every acknowledged receipt.
	deadline := time.Now().Add(20 * time.Second)
	for h, a := range ack {
		var got *types.Receipt
		for {
			got, err = ec.TransactionReceipt(context.Background(), h)
			if err == nil || !errors.Is(err, ethereum.NotFound) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("acknowledged transaction %s lost: %v", h, err)
		}
		if err := sameReceipt(a.receipt, got); err != nil {
			t.Fatalf("transaction %s: %v", h, err)
		}
	}
	head, err := ec.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ec.Close()
	n.stop(t)

	rep, err := sequencer.Verify(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatalf("re-execution of the log: %v", err)
	}
	// The same check through the binary, as an operator runs it.
	out, err := runMain(t, "verify", "--datadir", filepath.Join(dir, "data"))
	if err != nil || !strings.Contains(out, "sealed blocks match") {
		t.Fatalf("kestrel verify: %v\n%s", err, out)
	}
	if rep.HeadBlock < head.Number.Uint64() {
		t.Fatalf("re-execution reached block %d, node served %d", rep.HeadBlock, head.Number)
	}
	t.Logf("%d acknowledged transactions survived %d SIGKILLs; re-executed %d mini-blocks, %d txs, %d blocks, head root %s",
		len(ack), rounds, rep.MiniBlocks, rep.Transactions, rep.Blocks, rep.HeadRoot)
}

// runMain runs the binary's main with args and returns its output.
func runMain(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KESTREL_TEST_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func sameReceipt(want, got *types.Receipt) error {
	switch {
	case want.Status != got.Status:
		return fmt.Errorf("status %d, was %d", got.Status, want.Status)
	case want.GasUsed != got.GasUsed || want.CumulativeGasUsed != got.CumulativeGasUsed:
		return fmt.Errorf("gas %d/%d, was %d/%d", got.GasUsed, got.CumulativeGasUsed, want.GasUsed, want.CumulativeGasUsed)
	case want.BlockNumber.Cmp(got.BlockNumber) != 0 || want.TransactionIndex != got.TransactionIndex:
		return fmt.Errorf("position %v/%d, was %v/%d", got.BlockNumber, got.TransactionIndex, want.BlockNumber, want.TransactionIndex)
	case want.ContractAddress != got.ContractAddress || want.Bloom != got.Bloom || len(want.Logs) != len(got.Logs):
		return errors.New("contract address, bloom or logs differ")
	}
	for i := range want.Logs {
		a, b := want.Logs[i], got.Logs[i]
		if a.Address != b.Address || string(a.Data) != string(b.Data) || len(a.Topics) != len(b.Topics) || a.Index != b.Index {
			return fmt.Errorf("log %d differs", i)
		}
	}
	return nil
}
