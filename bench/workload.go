// Package bench measures Kestrel against go-ethereum on the same transactions.
//
// A Workload is a deterministic list of pre-signed raw transactions (derived
// from a seed) together with the pre-state they need. The same raw bytes are
// fed to two consumers:
//
//   - the go-ethereum baseline (baseline.go): one goroutine decoding, recovering
//     senders and applying the transactions with core.ApplyTransactionWithEVM on a
//     state.StateDB over an in-memory database, in block-sized groups;
//   - Kestrel end to end (e2e.go): a real sequencer (in-process with its own
//     genesis, or an external node) fed through its JSON-RPC HTTP endpoint, timed
//     until every transaction is in a durable mini-block.
package bench

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
)

// Kind names a workload.
type Kind string

// The workloads.
const (
	// KindETH is plain EIP-1559 ETH transfers from many senders to many fresh
	// recipients.
	KindETH Kind = "eth"
	// KindERC20 is ERC-20 transfer(to, amount) calls from many token holders to
	// many fresh recipients.
	KindERC20 Kind = "erc20"
)

// Kinds lists every workload in report order.
var Kinds = []Kind{KindETH, KindERC20}

// ParseKinds turns "eth", "erc20" or "all" into workloads.
func ParseKinds(s string) ([]Kind, error) {
	switch s {
	case "all":
		return Kinds, nil
	case string(KindETH):
		return []Kind{KindETH}, nil
	case string(KindERC20):
		return []Kind{KindERC20}, nil
	}
	return nil, fmt.Errorf("unknown workload %q (want eth, erc20 or all)", s)
}

// Transaction parameters shared by every workload.
var (
	// GasFeeCap leaves plenty of headroom for EIP-1559 base fee growth.
	GasFeeCap = big.NewInt(100 * params.GWei)
	// GasTipCap is the priority fee of every transaction.
	GasTipCap = big.NewInt(params.GWei)
	// SenderBalance is what each bench sender holds at the start.
	SenderBalance = new(big.Int).Mul(big.NewInt(1_000), big.NewInt(params.Ether))
	// SenderTokens is each sender's ERC-20 balance at the start.
	SenderTokens = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))
	// TokenAddress is where the in-process bench genesis places the ERC-20.
	TokenAddress = common.HexToAddress("0x00000000000000000000000000000000000e2020")
)

// Gas limits per transaction.
const (
	ETHTransferGas   = params.TxGas
	ERC20TransferGas = 80_000
)

// WorkloadConfig selects a workload. Equal configs give byte-identical
// transactions.
type WorkloadConfig struct {
	Kind Kind
	// Txs is the number of throughput transactions; Extra more follow them (the
	// latency phase uses them), continuing every sender's nonces.
	Txs, Extra int
	// Senders and Recipients are the account counts; Recipients 0 means Senders.
	Senders, Recipients int
	// Seed derives every key and address.
	Seed uint64
	// ChainID signs the transactions (0: the dev chain id).
	ChainID uint64
	// Token is the ERC-20 address (zero: TokenAddress).
	Token common.Address
	// StartNonces are the senders' nonces before the first transaction (external
	// nodes where the senders already sent something); missing means 0.
	StartNonces map[common.Address]uint64
}

// Sender is a funded bench account.
type Sender struct {
	Key        *ecdsa.PrivateKey
	Addr       common.Address
	StartNonce uint64
}

// RawTx is one pre-signed transaction.
type RawTx struct {
	Raw    []byte
	Hash   common.Hash
	Sender int // index into Workload.Senders
	Nonce  uint64
	To     int // index into Workload.Recipients
	Amount *big.Int
}

// Workload is a generated workload.
type Workload struct {
	Config     WorkloadConfig
	Senders    []Sender
	Recipients []common.Address
	Token      common.Address
	// Txs holds Config.Txs throughput transactions followed by Config.Extra more, in
	// sending order: transaction i comes from sender i mod Senders, so every round
	// of Senders transactions raises each sender's nonce by one.
	Txs []RawTx
}

// Throughput returns the throughput transactions.
func (w *Workload) Throughput() []RawTx { return w.Txs[:w.Config.Txs] }

// Extra returns the transactions after the throughput ones.
func (w *Workload) Extra() []RawTx { return w.Txs[w.Config.Txs:] }

func seedKey(seed uint64, label string, i int) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return crypto.Keccak256([]byte("kestrel-bench/"+label), b[:])
}

// SenderKey derives sender i's key from the seed.
func SenderKey(seed uint64, i int) *ecdsa.PrivateKey {
	for n := 0; ; n++ {
		k, err := crypto.ToECDSA(seedKey(seed, fmt.Sprintf("sender/%d", n), i))
		if err == nil {
			return k
		}
	}
}

// RecipientAddress derives recipient j's address from the seed (no key exists).
func RecipientAddress(seed uint64, j int) common.Address {
	return common.BytesToAddress(seedKey(seed, "recipient", j)[12:])
}

func (c *WorkloadConfig) check() error {
	switch {
	case c.Kind != KindETH && c.Kind != KindERC20:
		return fmt.Errorf("unknown workload %q", c.Kind)
	case c.Txs < 1 || c.Extra < 0:
		return errors.New("transaction count must be positive")
	case c.Senders < 1:
		return errors.New("sender count must be positive")
	case c.Recipients < 0:
		return errors.New("recipient count must not be negative")
	}
	if c.Recipients == 0 {
		c.Recipients = c.Senders
	}
	if c.ChainID == 0 {
		c.ChainID = chain.DevChainID
	}
	return nil
}

// Generate derives the accounts and signs every transaction (in parallel; this
// is setup, never timed).
func Generate(cfg WorkloadConfig) (*Workload, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	w := &Workload{Config: cfg, Token: cfg.Token}
	if w.Token == (common.Address{}) {
		w.Token = TokenAddress
	}
	w.Senders = make([]Sender, cfg.Senders)
	parallel(cfg.Senders, func(i int) {
		k := SenderKey(cfg.Seed, i)
		w.Senders[i] = Sender{Key: k, Addr: crypto.PubkeyToAddress(k.PublicKey)}
	})
	for i := range w.Senders {
		w.Senders[i].StartNonce = cfg.StartNonces[w.Senders[i].Addr]
	}
	w.Recipients = make([]common.Address, cfg.Recipients)
	for j := range w.Recipients {
		w.Recipients[j] = RecipientAddress(cfg.Seed, j)
	}
	total := cfg.Txs + cfg.Extra
	w.Txs = make([]RawTx, total)
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(cfg.ChainID))
	chainID := new(big.Int).SetUint64(cfg.ChainID)
	var (
		mu       sync.Mutex
		firstErr error
	)
	parallel(total, func(i int) {
		s := i % cfg.Senders
		round := i / cfg.Senders
		to := (i + round) % cfg.Recipients
		t := RawTx{Sender: s, Nonce: w.Senders[s].StartNonce + uint64(round), To: to,
			Amount: new(big.Int).SetUint64(1_000_000_000_000 + uint64(i%1000))}
		inner := &types.DynamicFeeTx{ChainID: chainID, Nonce: t.Nonce, GasTipCap: GasTipCap, GasFeeCap: GasFeeCap}
		switch cfg.Kind {
		case KindETH:
			inner.Gas = ETHTransferGas
			inner.To = &w.Recipients[to]
			inner.Value = t.Amount
		case KindERC20:
			inner.Gas = ERC20TransferGas
			inner.To = &w.Token
			inner.Data = contracts.ERC20TransferData(w.Recipients[to], t.Amount)
		}
		tx, err := types.SignNewTx(w.Senders[s].Key, signer, inner)
		if err == nil {
			t.Raw, err = tx.MarshalBinary()
			t.Hash = tx.Hash()
		}
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("sign tx %d: %w", i, err)
			}
			mu.Unlock()
			return
		}
		w.Txs[i] = t
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return w, nil
}

// parallel runs fn(0..n-1) on all CPUs.
func parallel(n int, fn func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	var wg sync.WaitGroup
	var next sync.Mutex
	i := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				start := i
				i += 64
				next.Unlock()
				if start >= n {
					return
				}
				for j := start; j < min(start+64, n); j++ {
					fn(j)
				}
			}
		}()
	}
	wg.Wait()
}

// Received sums what each recipient gets from txs (wei for eth, token units for
// erc20), keyed by recipient index.
func (w *Workload) Received(txs []RawTx) map[int]*big.Int {
	out := make(map[int]*big.Int)
	for _, t := range txs {
		v := out[t.To]
		if v == nil {
			v = new(big.Int)
			out[t.To] = v
		}
		v.Add(v, t.Amount)
	}
	return out
}

// SentBy counts the transactions of each sender in txs.
func (w *Workload) SentBy(txs []RawTx) []uint64 {
	out := make([]uint64, len(w.Senders))
	for _, t := range txs {
		out[t.Sender]++
	}
	return out
}

// ERC-20 storage layout of contracts/src/ERC20.sol: name, symbol, totalSupply,
// balanceOf, allowance.
const (
	tokenSlotName        = 0
	tokenSlotSymbol      = 1
	tokenSlotTotalSupply = 2
	tokenSlotBalances    = 3
)

func slotHash(n uint64) common.Hash { return common.BigToHash(new(big.Int).SetUint64(n)) }

// TokenBalanceSlot is the storage slot of balanceOf[addr].
func TokenBalanceSlot(addr common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(addr[:], 32), slotHash(tokenSlotBalances).Bytes())
}

// shortString is the storage word of a Solidity string shorter than 32 bytes.
func shortString(s string) common.Hash {
	var h common.Hash
	copy(h[:], s)
	h[31] = byte(2 * len(s))
	return h
}

// Alloc is the pre-state the workload needs: every sender funded (and holding
// tokens when the workload is erc20, with the token deployed by its runtime code
// and storage).
func (w *Workload) Alloc() map[common.Address]chain.Account {
	alloc := make(map[common.Address]chain.Account, len(w.Senders)+1)
	for _, s := range w.Senders {
		alloc[s.Addr] = chain.Account{Balance: new(big.Int).Set(SenderBalance), Nonce: s.StartNonce}
	}
	if w.Config.Kind == KindERC20 {
		storage := map[common.Hash]common.Hash{
			slotHash(tokenSlotName):        shortString("Kestrel Bench Token"),
			slotHash(tokenSlotSymbol):      shortString("KBT"),
			slotHash(tokenSlotTotalSupply): common.BigToHash(new(big.Int).Mul(SenderTokens, big.NewInt(int64(len(w.Senders))))),
		}
		for _, s := range w.Senders {
			storage[TokenBalanceSlot(s.Addr)] = common.BigToHash(SenderTokens)
		}
		alloc[w.Token] = chain.Account{Balance: new(big.Int), Nonce: 1, Code: contracts.ERC20().DeployedBytecode, Storage: storage}
	}
	return alloc
}

// Genesis is the dev genesis (dev accounts and system contracts included) plus
// the workload's pre-state.
func (w *Workload) Genesis() *chain.Genesis {
	g := chain.DevGenesis()
	g.ChainID = w.Config.ChainID
	for a, acc := range w.Alloc() {
		g.Alloc[a] = acc
	}
	return g
}
