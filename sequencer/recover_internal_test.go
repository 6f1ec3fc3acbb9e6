package sequencer

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestRecoverAfterSealedLastBlock covers a crash after a block was sealed and
// before the next block's first mini-block was logged: the last logged block is
// already sealed, and recovery must keep it as sealed (never append to it) and
// open the next block.
func TestRecoverAfterSealedLastBlock(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.BlockInterval = 100 * time.Millisecond

	s1, err := New(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for s1.index.headNumber() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s1.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Recover and seal the reopened block by hand, as the sealer would have just
	// before a crash; the next block gets no mini-block.
	s2, err := New(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	sealedNum := s2.open.env.Number
	if s2.open.miniCount == 0 {
		t.Fatal("the reopened block has no mini-blocks")
	}
	if err := s2.resealOpen(); err != nil {
		t.Fatal(err)
	}
	sealedHash := s2.index.block(sealedNum).hash
	if err := s2.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	s3, err := New(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Stop(ctx)
	if got := s3.index.headNumber(); got != sealedNum {
		t.Fatalf("head after recovery %d, want %d", got, sealedNum)
	}
	if s3.open.env.Number != sealedNum+1 || s3.open.miniCount != 0 {
		t.Fatalf("open block %d with %d mini-blocks, want %d with none", s3.open.env.Number, s3.open.miniCount, sealedNum+1)
	}
	if b := s3.index.block(sealedNum); b == nil || b.hash != sealedHash {
		t.Fatal("the sealed block changed across recovery")
	}
}
