package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/stream"
)

// Following the mini-block stream is a two-stage pipeline: the stream's
// consumer decodes each message and checks its checksum and signature (pure
// work, no state), the applier checks that it continues the chain and applies
// it. A message that fails a check is logged and never applied; a duplicate is
// skipped; a gap is refetched by sequence number (the stream's sequence number
// is the mini-block index) before the later mini-block is applied.

// verified is a decoded mini-block whose signature checked out.
type verified struct {
	seq uint64
	mb  *chain.MiniBlock
	raw []byte // the log encoding
}

var errHalted = errors.New("replica halted")

func (r *Replica) followMiniBlocks(ctx context.Context) {
	ch := make(chan verified, 64)
	applied := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		applied <- r.applyLoop(ctx, ch)
	}()
	defer func() { <-done }() // Stop returns once nothing applies any more
	dec := stream.NewDecoder()
	failures := 0
	for ctx.Err() == nil {
		from := r.node.MiniBlockHead() + 1
		err := r.conn.Follow(ctx, stream.KindMiniBlock, r.cfg.Name+"-mini", from, r.cfg.Window, func(seq uint64, data []byte) error {
			failures = 0
			mb, raw, err := r.decodeMini(dec, data)
			if err != nil {
				r.reject("mini-block", seq, err)
				return nil
			}
			select {
			case ch <- verified{seq: seq, mb: mb, raw: raw}:
				return nil
			case err := <-applied:
				return fmt.Errorf("%w: %v", errHalted, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil || errors.Is(err, errHalted) {
			break
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			r.log.Warn("Mini-block stream interrupted; resuming from the next index", "from", r.node.MiniBlockHead()+1, "err", err)
		}
		sleepCtx(ctx, min(time.Duration(failures)*250*time.Millisecond, 2*time.Second))
	}
	close(ch)
}

// decodeMini decodes a message and checks the sequencer's signature.
func (r *Replica) decodeMini(dec *stream.Decoder, data []byte) (*chain.MiniBlock, []byte, error) {
	mb, err := dec.MiniBlock(data)
	if err != nil {
		return nil, nil, err
	}
	raw, err := r.node.VerifyMiniBlock(mb)
	if err != nil {
		return nil, nil, err
	}
	for _, tx := range mb.Txs {
		tx.Hash() // cached in the transaction: hashed here, beside the applier
	}
	return mb, raw, nil
}

// applyLoop applies verified mini-blocks in order until ch closes or the node
// halts. A mini-block past the next index waits in a bounded reorder buffer
// for the ones before it; what has not arrived within gapTimeout (or when the
// buffer is full) is fetched by sequence number.
func (r *Replica) applyLoop(ctx context.Context, ch <-chan verified) error {
	dec := stream.NewDecoder() // for refetched messages
	ahead := make(map[uint64]verified)
	var gapSince time.Time
	tick := time.NewTicker(gapTimeout / 4)
	defer tick.Stop()
	fail := func(err error) error {
		if ctx.Err() == nil {
			r.log.Error("Replica stopped applying the stream", "err", err)
			r.halt(err)
		}
		for range ch { // let the consumer finish
		}
		return err
	}
	for {
		var v verified
		select {
		case w, ok := <-ch:
			if !ok {
				return nil
			}
			v = w
		case <-tick.C:
			if len(ahead) == 0 || time.Since(gapSince) < gapTimeout {
				continue
			}
			if err := r.fillGap(ctx, dec, ahead); err != nil {
				return fail(err)
			}
			gapSince = time.Time{}
			continue
		}
		err := r.apply(ctx, v)
		switch {
		case errors.Is(err, sequencer.ErrGap):
			if len(ahead) == 0 {
				gapSince = time.Now()
			}
			ahead[v.mb.Index] = v
			if len(ahead) >= maxAhead {
				if err := r.fillGap(ctx, dec, ahead); err != nil {
					return fail(err)
				}
				gapSince = time.Time{}
			}
			continue
		case err != nil:
			return fail(err)
		}
		if err := r.drain(ctx, ahead); err != nil {
			return fail(err)
		}
		if len(ahead) == 0 {
			gapSince = time.Time{}
		}
	}
}

const (
	gapTimeout = time.Second
	maxAhead   = 1024
)

// apply applies one mini-block; duplicates are skipped, a full sealer queue
// waited out. ErrGap is returned to the caller.
func (r *Replica) apply(ctx context.Context, v verified) error {
	for {
		err := r.node.ApplyMiniBlock(v.mb, v.raw)
		switch {
		case err == nil:
			r.stats.applied.Add(1)
			r.stats.lagMs.Store(time.Now().UnixMilli() - int64(v.mb.TimestampMs))
			return nil
		case errors.Is(err, sequencer.ErrAlreadyApplied):
			r.stats.duplicates.Add(1)
			return nil
		case errors.Is(err, sequencer.ErrBusy):
			if !sleepCtx(ctx, time.Millisecond) {
				return ctx.Err()
			}
		default:
			return err
		}
	}
}

// drain applies buffered mini-blocks that are next now.
func (r *Replica) drain(ctx context.Context, ahead map[uint64]verified) error {
	for {
		for idx := range ahead {
			if idx <= r.node.MiniBlockHead() {
				delete(ahead, idx) // duplicates of what was applied meanwhile
				r.stats.duplicates.Add(1)
			}
		}
		v, ok := ahead[r.node.MiniBlockHead()+1]
		if !ok {
			return nil
		}
		delete(ahead, v.mb.Index)
		if err := r.apply(ctx, v); err != nil {
			return err
		}
	}
}

// fillGap fetches the missing mini-blocks before the buffered ones, then
// applies everything that is next.
func (r *Replica) fillGap(ctx context.Context, dec *stream.Decoder, ahead map[uint64]verified) error {
	lowest := uint64(0)
	for idx := range ahead {
		if lowest == 0 || idx < lowest {
			lowest = idx
		}
	}
	r.log.Warn("Mini-blocks missing from the stream; fetching them", "from", r.node.MiniBlockHead()+1, "to", lowest-1)
	if err := r.refetch(ctx, dec, lowest); err != nil {
		return err
	}
	return r.drain(ctx, ahead)
}

// refetch fetches and applies the mini-blocks between the applied head and
// before, by sequence number.
func (r *Replica) refetch(ctx context.Context, dec *stream.Decoder, before uint64) error {
	for next := r.node.MiniBlockHead() + 1; next < before; next = r.node.MiniBlockHead() + 1 {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		data, err := r.conn.Get(gctx, stream.KindMiniBlock, next)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			first, _, berr := r.conn.Bounds(ctx, stream.KindMiniBlock)
			if berr == nil && next < first {
				return fmt.Errorf("mini-block %d is no longer in the stream (it starts at %d): restart the replica to bootstrap from a newer snapshot", next, first)
			}
			r.log.Warn("Refetching a missing mini-block failed; retrying", "index", next, "err", err)
			if !sleepCtx(ctx, 250*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		mb, raw, err := r.decodeMini(dec, data)
		if err == nil && mb.Index != next {
			err = fmt.Errorf("stream message %d holds mini-block %d", next, mb.Index)
		}
		if err != nil {
			r.reject("refetched mini-block", next, err)
			if !sleepCtx(ctx, time.Second) {
				return ctx.Err()
			}
			continue
		}
		r.stats.refetched.Add(1)
		if err := r.apply(ctx, verified{seq: next, mb: mb, raw: raw}); err != nil {
			return err
		}
	}
	return nil
}

// followHeaders feeds the signed headers to the node, which compares each with
// the block it seals from the applied diffs.
func (r *Replica) followHeaders(ctx context.Context) {
	dec := stream.NewDecoder()
	failures := 0
	for ctx.Err() == nil {
		expect := r.node.HeadNumber() + 1
		err := r.conn.Follow(ctx, stream.KindHeader, r.cfg.Name+"-headers", expect, 64, func(seq uint64, data []byte) error {
			failures = 0
			// Header sequence numbers are block numbers: refetch any skipped.
			for ; expect < seq; expect++ {
				if expect <= r.node.HeadNumber() {
					continue
				}
				gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				missing, err := r.conn.Get(gctx, stream.KindHeader, expect)
				cancel()
				if err != nil {
					return fmt.Errorf("refetch header %d: %w", expect, err)
				}
				if err := r.addHeader(ctx, dec, expect, missing); err != nil {
					return err
				}
			}
			if seq >= expect {
				expect = seq + 1
			}
			return r.addHeader(ctx, dec, seq, data)
		})
		if ctx.Err() != nil || errors.Is(err, errHalted) {
			return
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			r.log.Warn("Header stream interrupted; resuming", "from", r.node.HeadNumber()+1, "err", err)
		}
		sleepCtx(ctx, min(time.Duration(failures)*250*time.Millisecond, 2*time.Second))
	}
}

func (r *Replica) addHeader(ctx context.Context, dec *stream.Decoder, seq uint64, data []byte) error {
	rec, err := dec.BlockRecord(data)
	if err != nil {
		r.reject("header", seq, err)
		return nil
	}
	for {
		err := r.node.AddHeader(rec)
		switch {
		case err == nil:
			r.stats.headers.Add(1)
			return nil
		case errors.Is(err, sequencer.ErrAlreadyApplied):
			r.stats.duplicates.Add(1)
			return nil
		case errors.Is(err, sequencer.ErrHeaderAhead):
			if !sleepCtx(ctx, 5*time.Millisecond) {
				return ctx.Err()
			}
		case r.node.Stopped() || ctx.Err() != nil:
			return fmt.Errorf("%w: %v", errHalted, err)
		default:
			if errors.Is(err, sequencer.ErrBadSignature) || !haltedErr(r) {
				r.reject("header", seq, err)
				return nil
			}
			return fmt.Errorf("%w: %v", errHalted, err)
		}
	}
}

func haltedErr(r *Replica) bool { return r.node.Halted() != nil }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
