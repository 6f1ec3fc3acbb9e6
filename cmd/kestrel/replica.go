package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ethereum/go-ethereum/common"
	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/stream"
)

// streamPublishFlags configure the sequencer's diff stream.
func streamPublishFlags() []cli.Flag {
	d := stream.DefaultConfig()
	return []cli.Flag{
		&cli.StringFlag{Name: "stream.listen", Value: d.Listen, Usage: "address of the NATS JetStream server embedded in the sequencer (HOST:PORT; ignored with --stream.url)", Category: "STREAM"},
		&cli.StringFlag{Name: "stream.url", Usage: "publish to an external NATS cluster instead (nats://HOST:PORT[,...])", Category: "STREAM"},
		&cli.BoolFlag{Name: "stream.disable", Usage: "do not publish the diff stream (no replicas can follow)", Category: "STREAM"},
		&cli.StringFlag{Name: "stream.name", Value: d.Name, Usage: "prefix of the JetStream streams (NAME_MINI, NAME_HEADERS) and subjects", Category: "STREAM"},
		&cli.Int64Flag{Name: "stream.max-msgs", Value: d.MaxMsgs, Usage: "mini-blocks the stream keeps (0: no count limit)", Category: "STREAM"},
		&cli.Int64Flag{Name: "stream.max-bytes", Value: d.MaxBytes, Usage: "bytes of mini-blocks the stream keeps (0: no size limit)", Category: "STREAM"},
		&cli.DurationFlag{Name: "stream.max-age", Value: d.MaxAge, Usage: "how long the stream keeps a message (0: forever); older replicas bootstrap from a snapshot", Category: "STREAM"},
		&cli.IntFlag{Name: "stream.replicas", Value: d.Replicas, Usage: "copies a NATS cluster keeps of each stream", Category: "STREAM"},
	}
}

func streamPublishConfig(c *cli.Context) (*stream.Config, error) {
	if c.Bool("stream.disable") {
		return nil, nil
	}
	cfg := stream.DefaultConfig()
	cfg.Listen, cfg.URL, cfg.Name = c.String("stream.listen"), c.String("stream.url"), c.String("stream.name")
	cfg.MaxMsgs, cfg.MaxBytes, cfg.MaxAge = c.Int64("stream.max-msgs"), c.Int64("stream.max-bytes"), c.Duration("stream.max-age")
	cfg.Replicas = c.Int("stream.replicas")
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	return &cfg, nil
}

func replicaFlags() []cli.Flag {
	d := replica.DefaultConfig()
	flags := []cli.Flag{
		&cli.StringFlag{Name: "datadir", Value: defaultDataDir() + "-replica", Usage: "data directory of the replica's copy of the chain", Category: "CHAIN"},
		&cli.StringFlag{Name: "stream.url", Value: d.Stream.URL, Usage: "NATS server carrying the sequencer's diff stream", Category: "STREAM"},
		&cli.StringFlag{Name: "stream.name", Value: d.Stream.Name, Usage: "prefix of the JetStream streams to follow", Category: "STREAM"},
		&cli.IntFlag{Name: "stream.window", Value: d.Window, Usage: "stream messages buffered ahead of verification", Category: "STREAM"},
		&cli.StringFlag{Name: "sequencer.rpc", Value: d.SequencerRPC, Usage: "the sequencer's JSON-RPC URL; transactions sent to the replica are forwarded there", Category: "REPLICA"},
		&cli.StringFlag{Name: "sequencer.address", Value: d.SequencerAddress.Hex(), Usage: "address whose signature every mini-block and header must carry (default: the dev sequencer key's)", Category: "REPLICA"},
		&cli.StringFlag{Name: "bootstrap.url", Usage: "node serving state snapshots for an empty or outdated data directory (default: --sequencer.rpc)", Category: "REPLICA"},
		&cli.StringFlag{Name: "replica.name", Usage: "name of the replica's durable consumers on the stream (default: derived from --datadir)", Category: "REPLICA"},
		&cli.Uint64Flag{Name: "replica.snapshot-every", Value: d.Node.SnapshotEvery, Usage: "write a state snapshot every N blocks (0: never)", Category: "REPLICA"},
	}
	flags = append(flags, nodeFlags()...)
	return append(withEnv(flags), gcFlags()...)
}

func replicaConfig(c *cli.Context) (replica.Config, error) {
	cfg := replica.DefaultConfig()
	applyNodeFlags(c, &cfg.Node)
	cfg.Node.DataDir = c.String("datadir")
	cfg.Node.SnapshotEvery = c.Uint64("replica.snapshot-every")
	cfg.Stream.URL, cfg.Stream.Name = c.String("stream.url"), c.String("stream.name")
	cfg.Window = c.Int("stream.window")
	cfg.SequencerRPC, cfg.BootstrapURL, cfg.Name = c.String("sequencer.rpc"), c.String("bootstrap.url"), c.String("replica.name")
	addr := c.String("sequencer.address")
	if !common.IsHexAddress(addr) {
		return cfg, fmt.Errorf("--sequencer.address: %q is not an address", addr)
	}
	cfg.SequencerAddress = common.HexToAddress(addr)
	if cfg.Node.DataDir == "" {
		return cfg, errors.New("--datadir must not be empty")
	}
	if err := cfg.Node.Check(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

func replicaCommand() *cli.Command {
	return &cli.Command{
		Name:   "replica",
		Usage:  "follow the sequencer's diff stream and serve the JSON-RPC API from a verified copy of its state",
		Flags:  replicaFlags(),
		Action: runReplica,
	}
}

func runReplica(c *cli.Context) error {
	logger, err := nodePreamble(c)
	if err != nil {
		return err
	}
	cfg, err := replicaConfig(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := replica.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if err := r.Start(ctx); err != nil {
		_ = r.Stop(context.Background())
		return err
	}
	return waitForShutdown(ctx, logger, r.Fatal(), r.Stop)
}
