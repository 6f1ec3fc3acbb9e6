package main

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// devnetLoadAccounts is how many accounts the devnet's load sends from.
const devnetLoadAccounts = 16

// devnetLoadLabel seeds the load accounts' keys: key i is
// keccak256(label + " " + i). They are public, like the dev mnemonic's.
const devnetLoadLabel = "kestrel devnet load account"

// Fees of the load's transfers: the tip eth_maxPriorityFeePerGas suggests by
// default, and a fee cap far above the dev chain's base fee.
var (
	devnetLoadTip    = big.NewInt(1_000_000)
	devnetLoadFeeCap = big.NewInt(100 * params.GWei)
)

// loadKey is one of the load's accounts.
type loadKey struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// devnetLoadKeys derives the load accounts. They are not dev-mnemonic
// accounts, so a wallet using those never races the load for a nonce.
func devnetLoadKeys() []loadKey {
	out := make([]loadKey, devnetLoadAccounts)
	for i := range out {
		key, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("%s %d", devnetLoadLabel, i))))
		if err != nil {
			panic(fmt.Sprintf("devnet load key %d: %v", i, err)) // constant input; a test checks every key
		}
		out[i] = loadKey{Key: key, Address: crypto.PubkeyToAddress(key.PublicKey)}
	}
	return out
}

// loadClient is what the load needs of the sequencer's JSON-RPC.
type loadClient interface {
	// PendingNonces answers eth_getTransactionCount(addr, "pending") for each
	// address.
	PendingNonces(ctx context.Context, addrs []common.Address) ([]uint64, error)
	// SendRawTransactions sends each transaction with eth_sendRawTransaction in
	// one batch: errs holds each one's answer, err a failure of the whole call.
	SendRawTransactions(ctx context.Context, raws [][]byte) (errs []error, err error)
	Close()
}

// devnetLoad sends transfers among the load accounts at a steady rate. It
// keeps each account's next nonce, read with eth_getTransactionCount
// "pending" at start and again after any refusal. One goroutine runs it (run);
// sent and failed may be read from any.
type devnetLoad struct {
	client  loadClient
	signer  types.Signer
	chainID *big.Int
	keys    []loadKey
	nonces  []uint64
	stale   []bool // read the nonce again before the account's next send
	next    int    // round-robin sender
	rate    int
	rng     *rand.Rand
	log     *slog.Logger
	warn    rateLimitedLog

	// sent counts transactions the sequencer accepted, failed those it
	// refused or that the call lost.
	sent, failed atomic.Uint64
}

func newDevnetLoad(url string, chainID uint64, rate int, log *slog.Logger) (*devnetLoad, error) {
	c, err := gethrpc.Dial(url)
	if err != nil {
		return nil, fmt.Errorf("devnet load: %w", err)
	}
	return newDevnetLoadWith(rpcLoadClient{c}, chainID, rate, log), nil
}

func newDevnetLoadWith(client loadClient, chainID uint64, rate int, log *slog.Logger) *devnetLoad {
	keys := devnetLoadKeys()
	l := &devnetLoad{client: client, chainID: new(big.Int).SetUint64(chainID), keys: keys,
		nonces: make([]uint64, len(keys)), stale: make([]bool, len(keys)), rate: rate,
		rng: rand.New(rand.NewSource(time.Now().UnixNano())), log: log, warn: rateLimitedLog{every: 10 * time.Second}}
	l.signer = types.LatestSignerForChainID(l.chainID)
	for i := range l.stale {
		l.stale[i] = true
	}
	return l
}

func (l *devnetLoad) close() { l.client.Close() }

// run sends rate transactions per second until ctx ends. A slow or failing
// node does not make it catch up later: what could not be sent in time is
// skipped.
func (l *devnetLoad) run(ctx context.Context) {
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start, issued := time.Now(), uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := uint64(time.Since(start).Seconds() * float64(l.rate))
		if burst := uint64(max(1, l.rate/4)); due > issued+burst {
			issued = due - burst // fell behind: skip, do not flood
		}
		if n := int(due - issued); n > 0 {
			l.step(ctx, n)
			issued = due
		}
	}
}

// step sends n transfers in one batch, from the next accounts in turn.
func (l *devnetLoad) step(ctx context.Context, n int) {
	if err := l.resync(ctx); err != nil {
		if ctx.Err() == nil {
			l.failed.Add(uint64(n))
			l.warn.log(l.log, "Devnet load cannot read nonces", "err", err)
		}
		return
	}
	raws := make([][]byte, 0, n)
	from := make([]int, 0, n)
	for range n {
		i := l.next
		l.next = (l.next + 1) % len(l.keys)
		to := l.keys[(i+1+l.rng.Intn(len(l.keys)-1))%len(l.keys)].Address
		tx, err := types.SignNewTx(l.keys[i].Key, l.signer, &types.DynamicFeeTx{ChainID: l.chainID, Nonce: l.nonces[i],
			GasTipCap: devnetLoadTip, GasFeeCap: devnetLoadFeeCap, Gas: params.TxGas, To: &to, Value: big.NewInt(1 + l.rng.Int63n(params.GWei))})
		if err != nil {
			l.failed.Add(1)
			l.warn.log(l.log, "Devnet load cannot sign", "err", err)
			continue
		}
		raw, _ := tx.MarshalBinary()
		raws = append(raws, raw)
		from = append(from, i)
		l.nonces[i]++
	}
	errs, err := l.client.SendRawTransactions(ctx, raws)
	if err == nil && len(errs) != len(raws) {
		err = fmt.Errorf("%d answers to %d transactions", len(errs), len(raws))
	}
	if err != nil {
		// Whether any of them arrived is unknown.
		for _, i := range from {
			l.stale[i] = true
		}
		if ctx.Err() == nil {
			l.failed.Add(uint64(len(raws)))
			l.warn.log(l.log, "Devnet load cannot send", "err", err)
		}
		return
	}
	for k, err := range errs {
		if err == nil {
			l.sent.Add(1)
			continue
		}
		l.failed.Add(1)
		l.stale[from[k]] = true
		if isNonceError(err) {
			l.log.Debug("Devnet load nonce refused; reading it again", "account", l.keys[from[k]].Address, "err", err)
		} else {
			l.warn.log(l.log, "Devnet load transaction refused", "account", l.keys[from[k]].Address, "err", err)
		}
	}
}

// resync reads the pending nonce of every account marked stale.
func (l *devnetLoad) resync(ctx context.Context) error {
	var idx []int
	var addrs []common.Address
	for i, s := range l.stale {
		if s {
			idx, addrs = append(idx, i), append(addrs, l.keys[i].Address)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	nonces, err := l.client.PendingNonces(ctx, addrs)
	if err != nil {
		return err
	}
	if len(nonces) != len(idx) {
		return fmt.Errorf("%d nonces for %d accounts", len(nonces), len(idx))
	}
	for k, i := range idx {
		l.nonces[i], l.stale[i] = nonces[k], false
	}
	return nil
}

// isNonceError reports a refusal that a fresh nonce resolves.
func isNonceError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"nonce too low", "nonce too high", "already known", "replacement transaction underpriced"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// rateLimitedLog logs a warning at most once per period, counting the ones it
// held back (each still goes out at debug level).
type rateLimitedLog struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

func (r *rateLimitedLog) log(l *slog.Logger, msg string, args ...any) {
	if time.Since(r.last) < r.every {
		r.suppressed++
		l.Debug(msg, args...)
		return
	}
	if r.suppressed > 0 {
		args = append(args, "suppressed", r.suppressed)
	}
	l.Warn(msg, args...)
	r.last, r.suppressed = time.Now(), 0
}

// rpcLoadClient is loadClient over go-ethereum's JSON-RPC client (HTTP).
type rpcLoadClient struct{ c *gethrpc.Client }

func (r rpcLoadClient) PendingNonces(ctx context.Context, addrs []common.Address) ([]uint64, error) {
	out := make([]hexutil.Uint64, len(addrs))
	batch := make([]gethrpc.BatchElem, len(addrs))
	for i, a := range addrs {
		batch[i] = gethrpc.BatchElem{Method: "eth_getTransactionCount", Args: []any{a, "pending"}, Result: &out[i]}
	}
	if err := r.batch(ctx, batch); err != nil {
		return nil, err
	}
	nonces := make([]uint64, len(addrs))
	for i, e := range batch {
		if e.Error != nil {
			return nil, e.Error
		}
		nonces[i] = uint64(out[i])
	}
	return nonces, nil
}

func (r rpcLoadClient) SendRawTransactions(ctx context.Context, raws [][]byte) ([]error, error) {
	batch := make([]gethrpc.BatchElem, len(raws))
	for i, raw := range raws {
		batch[i] = gethrpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw)}, Result: new(common.Hash)}
	}
	if err := r.batch(ctx, batch); err != nil {
		return nil, err
	}
	errs := make([]error, len(batch))
	for i, e := range batch {
		errs[i] = e.Error
	}
	return errs, nil
}

func (r rpcLoadClient) batch(ctx context.Context, b []gethrpc.BatchElem) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.c.BatchCallContext(ctx, b)
}

func (r rpcLoadClient) Close() { r.c.Close() }
