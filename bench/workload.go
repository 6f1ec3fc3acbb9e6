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
	// KindSwaps is swaps on one hot pool and many cold ones (ColdPools pools,
	// all Pool.sol over the same two tokens, each with its own reserves and
	// balances): HotPercent percent of the senders swap on the hot pool, the
	// others on the cold pools in turn (see Workload.SenderPool), so the hot
	// pool's swaps conflict with each other while a cold pool sees a few swaps
	// per block.
	KindSwaps Kind = "swaps"
	// KindNFT is ERC-721 mints (contracts/src/NFT.sol): every sender calls
	// mint(recipient) on one collection, which gives each recipient the next
	// id, so every mint reads and writes the collection's id counter.
	KindNFT Kind = "nft"
	// KindDeploy is contract creations: every transaction deploys a fresh
	// ERC-20 (contracts/src/ERC20.sol, DeployTokenSupply minted to the
	// deployer) at the address its sender and nonce give.
	KindDeploy Kind = "deploy"
	// KindMix interleaves 70% ERC-20 transfers, 20% ETH transfers and 10% hot
	// pool swaps with a fixed pattern (see MixKind).
	KindMix Kind = "mix"
)

// Kinds lists the end-to-end benchmark's workloads (`kestrel bench`) in report
// order.
var Kinds = []Kind{KindETH, KindERC20}

// EngineKinds lists the engine benchmark's workloads (`kestrel bench engine`)
// in report order.
var EngineKinds = []Kind{KindETH, KindERC20, KindHotSwap, KindSwaps, KindNFT, KindDeploy, KindMix}

// EngineName is the workload's name in the engine benchmark, where ETH
// transfers are called "transfers" (the name).
func EngineName(k Kind) string {
	if k == KindETH {
		return "transfers"
	}
	return string(k)
}

// ParseEngineKinds turns "transfers" (or "eth"), "erc20", "hotswap", "swaps",
// "nft", "deploy", "mix" or "all" into workloads.
func ParseEngineKinds(s string) ([]Kind, error) {
	switch s {
	case "all":
		return EngineKinds, nil
	case "transfers", string(KindETH):
		return []Kind{KindETH}, nil
	case string(KindERC20), string(KindHotSwap), string(KindSwaps), string(KindNFT), string(KindDeploy), string(KindMix):
		return []Kind{Kind(s)}, nil
	}
	return nil, fmt.Errorf("unknown workload %q (want transfers, erc20, hotswap, swaps, nft, deploy, mix or all)", s)
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
	// NFTAddress is where the genesis places the nft workload's collection.
	NFTAddress = common.HexToAddress("0x00000000000000000000000000000000000e0721")
	// PoolLiquidity is each of the pool's two reserves at the start: large
	// against SwapAmountIn, so the price moves little over a run.
	PoolLiquidity = new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(params.Ether))
	// SwapAmountIn is the smallest swap input; swap i adds (i mod 1000) * 1e15.
	SwapAmountIn = big.NewInt(params.Ether)
	// DeployTokenSupply is what each ERC-20 of the deploy workload mints to its
	// deployer.
	DeployTokenSupply = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))
)

// Names of the tokens the workloads deploy, all shorter than 32 bytes (one
// storage word each).
const (
	deployTokenName   = "Kestrel Deploy Token"
	deployTokenSymbol = "KDT"
	nftName           = "Kestrel Bench NFT"
	nftSymbol         = "KBN"
)

// Gas limits per transaction, each with headroom over what the transaction
// uses (TestEngineSwaps, TestEngineNFT and TestEngineDeploy check the new
// kinds' at a tenth).
const (
	ETHTransferGas   = params.TxGas
	ERC20TransferGas = 80_000
	PoolSwapGas      = 150_000
	// NFTMintGas covers a mint to an account that holds no token yet (three
	// fresh storage slots when the counter is zero, two otherwise).
	NFTMintGas = 120_000
	// DeployGas covers an ERC-20 deployment: the init code as calldata, the
	// constructor's four fresh storage slots and 200 gas per runtime byte.
	DeployGas = 700_000
)

// The swaps workload's defaults and limits.
const (
	// DefaultColdPools is the swaps workload's cold pool count.
	DefaultColdPools = 100
	// MaxColdPools bounds ColdPools (the pools' addresses are
	// ColdPoolAddress(0..MaxColdPools-1)).
	MaxColdPools = 1 << 16
	// DefaultHotPercent is the percentage of the swaps workload's senders that
	// swap on the hot pool.
	DefaultHotPercent = 50
	// NoHotSwaps as WorkloadConfig.HotPercent sends every swap to a cold pool.
	NoHotSwaps = -1
)

// ColdPoolAddress is where the genesis places the swaps workload's cold pool k
// (the hot pool is at PoolAddress).
func ColdPoolAddress(k int) common.Address {
	return common.BigToAddress(big.NewInt(0xb00000 + int64(k)))
}

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
	// ColdPools is the swaps workload's number of cold pools (0:
	// DefaultColdPools).
	ColdPools int
	// HotPercent is the percentage (1 to 100) of the swaps workload's senders,
	// and so of its swaps, that trade on the hot pool; 0 means
	// DefaultHotPercent and NoHotSwaps none.
	HotPercent int
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
	To     int // index into Workload.Recipients (-1 for swaps and deployments)
	// Amount is the value sent (wei or token units), a swap's input, the id an
	// NFT mint gives To when every mint before it ran in order, or the supply
	// a deployed token mints to its deployer.
	Amount *big.Int
	// Pool is the pool a swap trades on.
	Pool common.Address
	// ZeroForOne and MinOut are a swap's direction and minimum output: the
	// exact output when every transaction before it ran in order (on every
	// pool, directions alternate from zero-for-one).
	ZeroForOne bool
	MinOut     *big.Int
}

// Workload is a generated workload.
type Workload struct {
	Config     WorkloadConfig
	Senders    []Sender
	Recipients []common.Address
	Token      common.Address
	// Token0, Token1 and Pool are the hot pool's contracts (hotswap, swaps and
	// mix); ColdPools are the swaps workload's other pools, over the same two
	// tokens.
	Token0, Token1, Pool common.Address
	ColdPools            []common.Address
	// NFT is the nft workload's collection.
	NFT common.Address
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
	case c.ColdPools < 0 || c.ColdPools > MaxColdPools:
		return fmt.Errorf("cold pool count must be between 0 and %d", MaxColdPools)
	case c.HotPercent < NoHotSwaps || c.HotPercent > 100:
		return errors.New("hot pool percentage must be between 0 and 100 (or NoHotSwaps)")
	}
	if c.Recipients == 0 {
		c.Recipients = c.Senders
	}
	if c.ColdPools == 0 {
		c.ColdPools = DefaultColdPools
	}
	if c.HotPercent == 0 {
		c.HotPercent = DefaultHotPercent
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
	w := &Workload{Config: cfg, Token: cfg.Token, Token0: Token0Address, Token1: Token1Address, Pool: PoolAddress, NFT: NFTAddress}
	if w.Token == (common.Address{}) {
		w.Token = TokenAddress
	}
	if cfg.Kind == KindSwaps {
		w.ColdPools = make([]common.Address, cfg.ColdPools)
		for k := range w.ColdPools {
			w.ColdPools[k] = ColdPoolAddress(k)
		}
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
	// Swaps and mints first, in order and on one goroutine: each swap's minimum
	// output is the exact output at the reserves all earlier swaps on its pool
	// leave, and each mint's id counts the mints before it.
	reserves := w.initialReserves()
	swaps := make(map[common.Address]int) // per pool
	mints := int64(0)
	for i := range w.Txs {
		t := &w.Txs[i]
		switch MixKind(cfg.Kind, i) {
		case KindNFT:
			t.Amount = big.NewInt(mints)
			mints++
		case KindHotSwap, KindSwaps:
			t.Pool = w.SenderPool(i % cfg.Senders)
			t.ZeroForOne = swaps[t.Pool]%2 == 0
			swaps[t.Pool]++
			t.Amount = new(big.Int).Mul(big.NewInt(int64(i%1000)), big.NewInt(1e15))
			t.Amount.Add(t.Amount, SwapAmountIn)
			r := reserves[t.Pool]
			rIn, rOut := r[0], r[1]
			if !t.ZeroForOne {
				rIn, rOut = r[1], r[0]
			}
			t.MinOut = contracts.PoolAmountOut(t.Amount, rIn, rOut)
			rIn.Add(rIn, t.Amount)
			rOut.Sub(rOut, t.MinOut)
		}
	}
	var deployData []byte
	if cfg.Kind == KindDeploy {
		var err error
		if deployData, err = contracts.ERC20DeployData(deployTokenName, deployTokenSymbol, DeployTokenSupply); err != nil {
			return nil, err
		}
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
		case KindHotSwap, KindSwaps:
			pre := &w.Txs[i]
			t.To, t.Amount, t.Pool, t.ZeroForOne, t.MinOut = -1, pre.Amount, pre.Pool, pre.ZeroForOne, pre.MinOut
			inner.Gas = PoolSwapGas
			inner.To = &t.Pool
			inner.Data = contracts.PoolSwapData(t.ZeroForOne, t.Amount, t.MinOut)
		case KindNFT:
			t.Amount = w.Txs[i].Amount
			inner.Gas = NFTMintGas
			inner.To = &w.NFT
			inner.Data = contracts.NFTMintData(w.Recipients[to])
		case KindDeploy:
			t.To, t.Amount = -1, DeployTokenSupply
			inner.Gas = DeployGas
			inner.Data = deployData
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
// erc20), keyed by recipient index; it is empty for the other workloads (mix
// included).
func (w *Workload) Received(txs []RawTx) map[int]*big.Int {
	out := make(map[int]*big.Int)
	for _, t := range txs {
		if t.Kind != w.Config.Kind || (t.Kind != KindETH && t.Kind != KindERC20) {
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

// SenderPool is the pool sender s swaps on: the hot pool, except in the swaps
// workload for the senders that are not among its HotPercent percent: sender s
// is hot when s*HotPercent/100 grows at s+1 (integer division, so that exactly
// HotPercent of every 100 consecutive senders are hot), and the cold senders
// take the cold pools in turn, in sender order. Each sender approves only its
// pool.
func (w *Workload) SenderPool(s int) common.Address {
	if w.Config.Kind != KindSwaps {
		return w.Pool
	}
	p := max(w.Config.HotPercent, 0)
	hotBefore := s * p / 100
	if (s+1)*p/100 > hotBefore {
		return w.Pool
	}
	return w.ColdPools[(s-hotBefore)%len(w.ColdPools)]
}

// Pools are the workload's pools: the hot pool (hotswap, swaps and mix), then
// the cold pools (swaps).
func (w *Workload) Pools() []common.Address {
	switch w.Config.Kind {
	case KindHotSwap, KindMix:
		return []common.Address{w.Pool}
	case KindSwaps:
		return append([]common.Address{w.Pool}, w.ColdPools...)
	}
	return nil
}

// initialReserves are every pool's reserves (reserve0, reserve1) in the
// genesis: PoolLiquidity each.
func (w *Workload) initialReserves() map[common.Address][2]*big.Int {
	out := make(map[common.Address][2]*big.Int)
	for _, p := range w.Pools() {
		out[p] = [2]*big.Int{new(big.Int).Set(PoolLiquidity), new(big.Int).Set(PoolLiquidity)}
	}
	return out
}

// PoolReserves are every pool's reserves (reserve0, reserve1) after txs, a
// prefix of w.Txs, ran in order: each swap then outputs exactly its MinOut.
func (w *Workload) PoolReserves(txs []RawTx) map[common.Address][2]*big.Int {
	out := w.initialReserves()
	for _, t := range txs {
		if t.Kind != KindHotSwap && t.Kind != KindSwaps {
			continue
		}
		r := out[t.Pool]
		in, outIdx := 0, 1
		if !t.ZeroForOne {
			in, outIdx = 1, 0
		}
		r[in].Add(r[in], t.Amount)
		r[outIdx].Sub(r[outIdx], t.MinOut)
	}
	return out
}

// Created is the address of the contract a deploy transaction creates.
func (w *Workload) Created(t RawTx) common.Address {
	return crypto.CreateAddress(w.Senders[t.Sender].Addr, t.Nonce)
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
// holding SenderTokens; for hotswap, swaps (and mix) the pools and their two
// tokens, each pool holding PoolLiquidity of both (its reserves), every sender
// holding SenderTokens of both and having approved its pool (SenderPool) for
// the maximum; for nft the collection with its name and symbol and nothing
// minted. The deploy workload needs funded senders only.
func (w *Workload) Alloc() map[common.Address]chain.Account {
	pools := w.Pools()
	alloc := make(map[common.Address]chain.Account, len(w.Senders)+len(pools)+3)
	for _, s := range w.Senders {
		alloc[s.Addr] = chain.Account{Balance: new(big.Int).Set(SenderBalance), Nonce: s.StartNonce}
	}
	kind := w.Config.Kind
	if kind == KindERC20 || kind == KindMix {
		alloc[w.Token] = w.tokenAccount("Kestrel Bench Token", "KBT", nil)
	}
	if len(pools) > 0 {
		alloc[w.Token0] = w.tokenAccount("Kestrel Pool Token 0", "KP0", pools)
		alloc[w.Token1] = w.tokenAccount("Kestrel Pool Token 1", "KP1", pools)
		for _, p := range pools {
			alloc[p] = chain.Account{Balance: new(big.Int), Nonce: 1, Code: contracts.Pool().DeployedBytecode, Storage: map[common.Hash]common.Hash{
				slotHash(contracts.PoolSlotToken0):   common.BytesToHash(w.Token0[:]),
				slotHash(contracts.PoolSlotToken1):   common.BytesToHash(w.Token1[:]),
				slotHash(contracts.PoolSlotReserve0): common.BigToHash(PoolLiquidity),
				slotHash(contracts.PoolSlotReserve1): common.BigToHash(PoolLiquidity),
			}}
		}
	}
	if kind == KindNFT {
		alloc[w.NFT] = chain.Account{Balance: new(big.Int), Nonce: 1, Code: contracts.NFT().DeployedBytecode, Storage: map[common.Hash]common.Hash{
			slotHash(contracts.NFTSlotName):   shortString(nftName),
			slotHash(contracts.NFTSlotSymbol): shortString(nftSymbol),
		}}
	}
	return alloc
}

// tokenAccount is an ERC-20 (contracts/src/ERC20.sol) in which every sender
// holds SenderTokens; with pools, each pool also holds PoolLiquidity and every
// sender has approved its pool (SenderPool) for the maximum.
func (w *Workload) tokenAccount(name, symbol string, pools []common.Address) chain.Account {
	supply := new(big.Int).Mul(SenderTokens, big.NewInt(int64(len(w.Senders))))
	storage := map[common.Hash]common.Hash{
		slotHash(tokenSlotName):   shortString(name),
		slotHash(tokenSlotSymbol): shortString(symbol),
	}
	maxAllowance := common.MaxHash
	for i, s := range w.Senders {
		storage[TokenBalanceSlot(s.Addr)] = common.BigToHash(SenderTokens)
		if len(pools) > 0 {
			storage[TokenAllowanceSlot(s.Addr, w.SenderPool(i))] = maxAllowance
		}
	}
	for _, p := range pools {
		storage[TokenBalanceSlot(p)] = common.BigToHash(PoolLiquidity)
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
