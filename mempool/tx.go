package mempool

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// Tx is a transaction with what the pool knows about it. Transactions held by
// the pool (returned by Ready and Get) are shared and must not be modified.
type Tx struct {
	Tx     *types.Transaction
	Hash   common.Hash
	Sender common.Address
	Raw    []byte // canonical encoding (types.Transaction.MarshalBinary)
	Size   uint64 // len(Raw)
	Added  time.Time

	// signer is the pool signer that recovered Sender; a Tx that does not carry
	// this pool's signer has its sender recovered again by Add.
	signer types.Signer

	// Filled by Add.
	seq    uint64 // arrival order in the pool
	nonce  uint64
	gas    uint64
	feeCap uint256.Int
	tipCap uint256.Int
	cost   uint256.Int // gas*feeCap + value
}

// Nonce returns the transaction's nonce.
func (t *Tx) Nonce() uint64 { return t.Tx.Nonce() }

// parallelMinItems is the batch size from which bookkeeping work (not sender
// recovery, which is always worth it) is spread over goroutines.
const parallelMinItems = 512

// parallelMin is parallel for cheap per-item work: small batches stay on the
// calling goroutine.
func (p *Pool) parallelMin(n int, fn func(i int)) {
	if n < parallelMinItems {
		for i := range n {
			fn(i)
		}
		return
	}
	p.parallel(n, fn)
}

// parallel runs fn(0..n-1) on up to RecoverWorkers goroutines.
func (p *Pool) parallel(n int, fn func(i int)) {
	workers := min(p.cfg.RecoverWorkers, n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// DecodeBatch decodes raw transactions (types.Transaction.UnmarshalBinary) and
// recovers their senders, spreading the work over Config.RecoverWorkers
// goroutines. The size limit is checked before decoding, the transaction type
// before recovery, and a transaction the pool already holds is reported as
// ErrAlreadyKnown without recovery. When recovery fails (a bad signature,
// another chain's id), the checks go-ethereum makes before it are made first,
// so that the error is go-ethereum's. For each item it returns the
// transaction or an error. The raw slices are copied, so callers may reuse
// their buffers. Pass the transactions to Add unmodified.
func (p *Pool) DecodeBatch(raws [][]byte) ([]*Tx, []error) {
	txs := make([]*Tx, len(raws))
	errs := make([]error, len(raws))
	now := time.Now()
	p.parallel(len(raws), func(i int) { txs[i], errs[i] = p.decode(raws[i], now) })
	return txs, errs
}

func (p *Pool) decode(raw []byte, now time.Time) (*Tx, error) {
	if uint64(len(raw)) > p.cfg.MaxTxSize {
		return nil, fmt.Errorf("%w: transaction size %v, limit %v", ErrOversizedData, len(raw), p.cfg.MaxTxSize)
	}
	raw = bytes.Clone(raw)
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	t := &Tx{Tx: tx, Hash: tx.Hash(), Raw: raw, Size: uint64(len(raw)), Added: now}
	if p.Get(t.Hash) != nil {
		return nil, ErrAlreadyKnown
	}
	env := p.env.Load()
	if err := p.checkEnvelope(tx, env); err != nil {
		return nil, err
	}
	if err := p.recover(t); err != nil {
		// go-ethereum's pool recovers the sender after its basic checks, so
		// their errors come first.
		if berr := p.checkBasics(tx, env); berr != nil {
			return nil, berr
		}
		return nil, err
	}
	return t, nil
}

// recover sets t.Sender from the signature. Its errors read as go-ethereum's
// pool's: "invalid sender: " and the signer's error (a transaction for another
// chain: "invalid chain id for signer: have 1 want 31337").
func (p *Pool) recover(t *Tx) error {
	from, err := types.Sender(p.signer, t.Tx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSender, err)
	}
	t.Sender = from
	t.signer = p.signer
	return nil
}

// checkEnvelope checks the transaction type against the open block's forks
// (and refuses unprotected legacy transactions, as go-ethereum's RPC does
// before its pool sees them): the checks that must pass before sender
// recovery. The chain id is the signer's to check (see recover).
func (p *Pool) checkEnvelope(tx *types.Transaction, env *envState) error {
	switch typ := tx.Type(); typ {
	case types.LegacyTxType:
		if !tx.Protected() {
			return ErrUnprotectedTx
		}
	case types.AccessListTxType:
		if !env.rules.IsBerlin {
			return fmt.Errorf("%w: type %d rejected, pool not yet in Berlin", ErrTxTypeNotSupported, typ)
		}
	case types.DynamicFeeTxType:
		if !env.rules.IsLondon {
			return fmt.Errorf("%w: type %d rejected, pool not yet in London", ErrTxTypeNotSupported, typ)
		}
	case types.SetCodeTxType:
		if !env.rules.IsPrague {
			return fmt.Errorf("%w: type %d rejected, pool not yet in Prague", ErrTxTypeNotSupported, typ)
		}
	case types.BlobTxType:
		return fmt.Errorf("%w: blob transactions are not accepted", ErrTxTypeNotSupported)
	default:
		return fmt.Errorf("%w: tx type %d", ErrTxTypeNotSupported, typ)
	}
	return nil
}

// checkBasics runs the stateless checks go-ethereum's pool makes before it
// recovers the sender (txpool.ValidateTransaction), in its order.
func (p *Pool) checkBasics(tx *types.Transaction, env *envState) error {
	if err := p.checkEnvelope(tx, env); err != nil {
		return err
	}
	rules := &env.rules
	if tx.To() == nil {
		if err := vm.CheckMaxInitCodeSize(rules, uint64(len(tx.Data()))); err != nil {
			return err
		}
	}
	if rules.IsOsaka && tx.Gas() > params.MaxTxGas {
		return fmt.Errorf("%w (cap: %d, tx: %d)", ErrGasLimitTooHigh, params.MaxTxGas, tx.Gas())
	}
	if tx.Value().Sign() < 0 {
		return ErrNegativeValue
	}
	if env.GasLimit != 0 && tx.Gas() > env.GasLimit {
		return ErrGasLimit // go-ethereum gives no figures
	}
	feeCap, tipCap := tx.GasFeeCap(), tx.GasTipCap()
	if feeCap.BitLen() > 256 {
		return ErrFeeCapVeryHigh
	}
	if tipCap.BitLen() > 256 {
		return ErrTipVeryHigh
	}
	if feeCap.Cmp(tipCap) < 0 {
		return ErrTipAboveFeeCap
	}
	return nil
}

// validate runs the stateless checks (all but size and signature) in
// go-ethereum's order and fills the derived fields of t.
func (p *Pool) validate(t *Tx, env *envState) error {
	tx := t.Tx
	if err := p.checkBasics(tx, env); err != nil {
		return err
	}
	// Here go-ethereum recovers the sender; of its errors only the chain id's
	// is possible for a transaction recovered by DecodeBatch.
	if id := tx.ChainId(); id.Cmp(p.chainID) != 0 {
		return fmt.Errorf("%w: %w: have %d want %d", ErrInvalidSender, ErrInvalidChainId, id, p.chainID)
	}
	rules := &env.rules
	feeCap, tipCap := tx.GasFeeCap(), tx.GasTipCap()
	if tx.Nonce()+1 < tx.Nonce() {
		return ErrNonceMax
	}
	intr, err := core.IntrinsicGas(tx.Data(), tx.AccessList(), tx.SetCodeAuthorizations(), tx.To() == nil, true, rules.IsIstanbul, rules.IsShanghai)
	if err != nil {
		return err
	}
	if tx.Gas() < intr {
		return fmt.Errorf("%w: gas %v, minimum needed %v", ErrIntrinsicGas, tx.Gas(), intr)
	}
	if rules.IsPrague {
		floor, err := core.FloorDataGas(tx.Data())
		if err != nil {
			return err
		}
		if tx.Gas() < floor {
			return fmt.Errorf("%w: gas %v, minimum needed %v", ErrFloorDataGas, tx.Gas(), floor)
		}
	}
	if tipCap.Cmp(p.cfg.MinTipCap) < 0 {
		return fmt.Errorf("%w: gas tip cap %v, minimum needed %v", ErrTxGasPriceTooLow, tipCap, p.cfg.MinTipCap)
	}
	if tx.Type() == types.SetCodeTxType {
		if len(tx.SetCodeAuthorizations()) == 0 {
			return ErrEmptyAuthList
		}
		if tx.To() == nil {
			return ErrSetCodeTxCreate
		}
	}
	t.nonce = tx.Nonce()
	t.gas = tx.Gas()
	t.feeCap.SetFromBig(feeCap)
	t.tipCap.SetFromBig(tipCap)
	var value uint256.Int
	if value.SetFromBig(tx.Value()) {
		return fmt.Errorf("%w: value overflow", ErrInsufficientFunds)
	}
	_, o1 := t.cost.MulOverflow(&t.feeCap, uint256.NewInt(t.gas))
	_, o2 := t.cost.AddOverflow(&t.cost, &value)
	if o1 || o2 {
		return fmt.Errorf("%w: total tx cost overflow", ErrInsufficientFunds)
	}
	return nil
}

// prepare turns a caller's Tx into the pool's own copy, fully checked except
// for state. A Tx from this pool's DecodeBatch is trusted for Raw, Hash and
// Sender; any other is re-encoded and its sender recovered.
func (p *Pool) prepare(in *Tx, env *envState, now time.Time) (*Tx, error) {
	if in == nil || in.Tx == nil {
		return nil, ErrNilTx
	}
	t := &Tx{Tx: in.Tx, Hash: in.Hash, Sender: in.Sender, Raw: in.Raw, Size: in.Size, Added: in.Added, signer: in.signer}
	if t.Added.IsZero() {
		t.Added = now
	}
	trusted := t.signer == p.signer && t.Raw != nil
	if !trusted {
		// Validate first: negative values and the like can't be encoded.
		if err := p.validate(t, env); err != nil {
			return nil, err
		}
		raw, err := t.Tx.MarshalBinary()
		if err != nil {
			return nil, err
		}
		t.Raw, t.Size, t.Hash = raw, uint64(len(raw)), t.Tx.Hash()
	}
	if t.Size > p.cfg.MaxTxSize {
		return nil, fmt.Errorf("%w: transaction size %v, limit %v", ErrOversizedData, t.Size, p.cfg.MaxTxSize)
	}
	if trusted {
		if err := p.validate(t, env); err != nil {
			return nil, err
		}
	} else if err := p.recover(t); err != nil {
		return nil, err
	}
	return t, nil
}
