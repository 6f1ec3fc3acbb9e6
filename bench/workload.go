// Package bench measures Kestrel against go-ethereum on the same transactions.
//
// A Workload is a deterministic list of pre-signed raw transactions (derived
// from a seed) together with the pre-state they need. The same raw bytes are
// fed to three consumers:
//
//   - the go-ethereum baseline (baseline.go): one goroutine decoding, recovering
//     senders and applying the transactions with core.ApplyTransactionWithEVM on a
//     state.StateDB over an in-memory database, in block-sized groups;
//   - Kestrel end to end (e2e.go): a real sequencer (in-process with its own
//     genesis, or an external node) fed through its JSON-RPC HTTP endpoint, timed
//     until every transaction is in a durable mini-block;
//   - the execution-engine benchmark (engine.go, `kestrel bench engine`):
//     go-ethereum's sequential processing, Kestrel's sequential executor and
//     Kestrel's parallel executor on the same decoded transactions with their
//     senders already recovered, execution alone timed.
package bench

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"slices"
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
	// KindHotSwap is swaps on one constant-product pool (contracts/src/Pool.sol)
	// from many swappers: every transaction reads and writes the same reserves
	// and pool balances, so none of them commute.
	KindHotSwap Kind = "hotswap"
	// KindMix interleaves 70% ERC-20 transfers, 20% ETH transfers and 10% hot
	// pool swaps with a fixed pattern (see MixKind).
	KindMix Kind = "mix"
)

// Kinds lists the end-to-end benchmark's workloads (`kestrel bench`) in report
// order.
var Kinds = []Kind{KindETH, KindERC20}

// EngineKinds lists the engine benchmark's workloads (`kestrel bench engine`)
// in report order.
var EngineKinds = []Kind{KindETH, KindERC20, KindHotSwap, KindMix}

// EngineName is the workload's name in the engine benchmark, where ETH
// transfers are called "transfers" (the name).
func EngineName(k Kind) string {
	if k == KindETH {
		return "transfers"
	}
	return string(k)
}

// ParseEngineKinds turns "transfers" (or "eth"), "erc20", "hotswap", "mix" or
// "all" into workloads.
func ParseEngineKinds(s string) ([]Kind, error) {
	switch s {
	case "all":
		return EngineKinds, nil
	case "transfers", string(KindETH):
		return []Kind{KindETH}, nil
	case string(KindERC20), string(KindHotSwap), string(KindMix):
		return []Kind{Kind(s)}, nil
	}
	return nil, fmt.Errorf("unknown workload %q (want transfers, erc20, hotswap, mix or all)", s)
}

// mixPattern is KindMix's kinds of ten consecutive transactions: 7 ERC-20, 2 ETH,
// 1 swap, spread so that neighbours differ.
var mixPattern = [10]Kind{KindERC20, KindERC20, KindETH, KindERC20, KindERC20, KindETH, KindERC20, KindERC20, KindERC20, KindHotSwap}

// MixKind is the kind of transaction i of a workload of kind k: k itself, or for
// KindMix the kind its fixed pattern gives.
func MixKind(k Kind, i int) Kind {
	if k == KindMix {
		return mixPattern[i%len(mixPattern)]
	}
	return k
}

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
	// Token0Address and Token1Address are the hot pool's two ERC-20 tokens, and
	// PoolAddress the pool (contracts/src/Pool.sol), all in the genesis alloc.
	Token0Address = common.HexToAddress("0x00000000000000000000000000000000000e2000")
	Token1Address = common.HexToAddress("0x00000000000000000000000000000000000e2001")
	PoolAddress   = common.HexToAddress("0x0000000000000000000000000000000000000a33")
	// PoolLiquidity is each of the pool's two reserves at the start: large
	// against SwapAmountIn, so the price moves little over a run.
	PoolLiquidity = new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(params.Ether))
	// SwapAmountIn is the smallest swap input; swap i adds (i mod 1000) * 1e15.
	SwapAmountIn = big.NewInt(params.Ether)
)

// Gas limits per transaction.
const (
	ETHTransferGas   = params.TxGas
	ERC20TransferGas = 80_000
	PoolSwapGas      = 150_000
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
	Raw []byte
	// Kind is what the transaction does (for KindMix workloads, one of the
	// mixed kinds).
	Kind   Kind
	Hash   common.Hash
	Sender int // index into Workload.Senders
	Nonce  uint64
	To     int // index into Workload.Recipients (-1 for swaps)
	// Amount is the value sent (wei or token units), or a swap's input.
	Amount *big.Int
	// ZeroForOne and MinOut are a swap's direction and minimum output: the
	// exact output when every transaction before it ran in order.
	ZeroForOne bool
	MinOut     *big.Int
}

// Workload is a generated workload.
type Workload struct {
	Config     WorkloadConfig
	Senders    []Sender
	Recipients []common.Address
	Token      common.Address
	// Token0, Token1 and Pool are the hot pool's contracts (hotswap and mix).
	Token0, Token1, Pool common.Address
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
	case !slices.Contains(EngineKinds, c.Kind):
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
	w := &Workload{Config: cfg, Token: cfg.Token, Token0: Token0Address, Token1: Token1Address, Pool: PoolAddress}
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
	// Swaps first, in order and on one goroutine: each one's minimum output is
	// the exact output at the reserves all earlier swaps leave.
	r0, r1 := new(big.Int).Set(PoolLiquidity), new(big.Int).Set(PoolLiquidity)
	swaps := 0
	for i := range w.Txs {
		if MixKind(cfg.Kind, i) != KindHotSwap {
			continue
		}
		t := &w.Txs[i]
		t.ZeroForOne = swaps%2 == 0
		t.Amount = new(big.Int).Mul(big.NewInt(int64(i%1000)), big.NewInt(1e15))
		t.Amount.Add(t.Amount, SwapAmountIn)
		rIn, rOut := r0, r1
		if !t.ZeroForOne {
			rIn, rOut = r1, r0
		}
		t.MinOut = contracts.PoolAmountOut(t.Amount, rIn, rOut)
		rIn.Add(rIn, t.Amount)
		rOut.Sub(rOut, t.MinOut)
		swaps++
	}
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
		t := RawTx{Kind: MixKind(cfg.Kind, i), Sender: s, Nonce: w.Senders[s].StartNonce + uint64(round), To: to,
			Amount: new(big.Int).SetUint64(1_000_000_000_000 + uint64(i%1000))}
		inner := &types.DynamicFeeTx{ChainID: chainID, Nonce: t.Nonce, GasTipCap: GasTipCap, GasFeeCap: GasFeeCap}
		switch t.Kind {
		case KindETH:
			inner.Gas = ETHTransferGas
			inner.To = &w.Recipients[to]
			inner.Value = t.Amount
		case KindERC20:
			inner.Gas = ERC20TransferGas
			inner.To = &w.Token
			inner.Data = contracts.ERC20TransferData(w.Recipients[to], t.Amount)
		case KindHotSwap:
			t.To, t.Amount, t.ZeroForOne, t.MinOut = -1, w.Txs[i].Amount, w.Txs[i].ZeroForOne, w.Txs[i].MinOut
			inner.Gas = PoolSwapGas
			inner.To = &w.Pool
			inner.Data = contracts.PoolSwapData(t.ZeroForOne, t.Amount, t.MinOut)
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
// erc20), keyed by recipient index; it is empty for hotswap and mix workloads.
func (w *Workload) Received(txs []RawTx) map[int]*big.Int {
	out := make(map[int]*big.Int)
	for _, t := range txs {
		if t.Kind != w.Config.Kind {
			continue
		}
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
	tokenSlotAllowances  = 4
)

func slotHash(n uint64) common.Hash { return common.BigToHash(new(big.Int).SetUint64(n)) }

// TokenBalanceSlot is the storage slot of balanceOf[addr].
func TokenBalanceSlot(addr common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(addr[:], 32), slotHash(tokenSlotBalances).Bytes())
}

// TokenAllowanceSlot is the storage slot of allowance[owner][spender].
func TokenAllowanceSlot(owner, spender common.Address) common.Hash {
	inner := crypto.Keccak256(common.LeftPadBytes(owner[:], 32), slotHash(tokenSlotAllowances).Bytes())
	return crypto.Keccak256Hash(common.LeftPadBytes(spender[:], 32), inner)
}

// shortString is the storage word of a Solidity string shorter than 32 bytes.
func shortString(s string) common.Hash {
	var h common.Hash
	copy(h[:], s)
	h[31] = byte(2 * len(s))
	return h
}

// Alloc is the pre-state the workload needs: every sender funded; for erc20
// (and mix) the token deployed by its runtime code and storage, every sender
// holding SenderTokens; for hotswap (and mix) the pool and its two tokens, the
// pool holding PoolLiquidity of each (its reserves), every sender holding
// SenderTokens of both and having approved the pool for the maximum.
func (w *Workload) Alloc() map[common.Address]chain.Account {
	alloc := make(map[common.Address]chain.Account, len(w.Senders)+4)
	for _, s := range w.Senders {
		alloc[s.Addr] = chain.Account{Balance: new(big.Int).Set(SenderBalance), Nonce: s.StartNonce}
	}
	kind := w.Config.Kind
	if kind == KindERC20 || kind == KindMix {
		alloc[w.Token] = w.tokenAccount("Kestrel Bench Token", "KBT", nil)
	}
	if kind == KindHotSwap || kind == KindMix {
		alloc[w.Token0] = w.tokenAccount("Kestrel Pool Token 0", "KP0", &w.Pool)
		alloc[w.Token1] = w.tokenAccount("Kestrel Pool Token 1", "KP1", &w.Pool)
		alloc[w.Pool] = chain.Account{Balance: new(big.Int), Nonce: 1, Code: contracts.Pool().DeployedBytecode, Storage: map[common.Hash]common.Hash{
			slotHash(contracts.PoolSlotToken0):   common.BytesToHash(w.Token0[:]),
			slotHash(contracts.PoolSlotToken1):   common.BytesToHash(w.Token1[:]),
			slotHash(contracts.PoolSlotReserve0): common.BigToHash(PoolLiquidity),
			slotHash(contracts.PoolSlotReserve1): common.BigToHash(PoolLiquidity),
		}}
	}
	return alloc
}

// tokenAccount is an ERC-20 (contracts/src/ERC20.sol) in which every sender
// holds SenderTokens; with a pool, the pool also holds PoolLiquidity and every
// sender has approved it for the maximum.
func (w *Workload) tokenAccount(name, symbol string, pool *common.Address) chain.Account {
	supply := new(big.Int).Mul(SenderTokens, big.NewInt(int64(len(w.Senders))))
	storage := map[common.Hash]common.Hash{
		slotHash(tokenSlotName):   shortString(name),
		slotHash(tokenSlotSymbol): shortString(symbol),
	}
	maxAllowance := common.MaxHash
	for _, s := range w.Senders {
		storage[TokenBalanceSlot(s.Addr)] = common.BigToHash(SenderTokens)
		if pool != nil {
			storage[TokenAllowanceSlot(s.Addr, *pool)] = maxAllowance
		}
	}
	if pool != nil {
		storage[TokenBalanceSlot(*pool)] = common.BigToHash(PoolLiquidity)
		supply.Add(supply, PoolLiquidity)
	}
	storage[slotHash(tokenSlotTotalSupply)] = common.BigToHash(supply)
	return chain.Account{Balance: new(big.Int), Nonce: 1, Code: contracts.ERC20().DeployedBytecode, Storage: storage}
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
