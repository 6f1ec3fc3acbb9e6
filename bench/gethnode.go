package bench

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// GethNode is go-ethereum's own JSON-RPC stack over a Kestrel genesis: a
// node.Node serving HTTP on loopback in front of an eth.Ethereum full node,
// with blocks sealed on demand by catalyst's SimulatedBeacon. It is assembled
// exactly as ethclient/simulated.NewBackend assembles its node (node.New,
// eth.New, the filter API, the simulated beacon), but step by step so that a
// failure is an error rather than a panic and so that the HTTP server may
// listen on port 0 and report the port it got.
//
// A GethNode changes go-ethereum's process-wide default logger (to discard)
// while it runs and restores it on Stop; at most one should run at a time.
type GethNode struct {
	stack   *node.Node
	eth     *eth.Ethereum
	beacon  *catalyst.SimulatedBeacon
	url     string
	prevLog log.Logger
}

// GethGenesis is Kestrel's genesis in go-ethereum's form: the same chain
// config (chain id, every fork through Prague, or Osaka, at genesis),
// timestamp, gas limit, base fee, fee recipient, extra data and allocation
// (balances, nonces, code and storage, the EIP-2935 and EIP-4788 system
// contracts included).
func GethGenesis(g *chain.Genesis) *core.Genesis {
	alloc := make(types.GenesisAlloc, len(g.Alloc))
	for addr, a := range g.Alloc {
		alloc[addr] = types.Account{Code: a.Code, Storage: a.Storage, Balance: new(big.Int).Set(a.Balance), Nonce: a.Nonce}
	}
	return &core.Genesis{
		Config:     g.ChainConfig(),
		Timestamp:  g.Timestamp,
		ExtraData:  g.ExtraData,
		GasLimit:   g.GasLimit,
		Difficulty: new(big.Int),
		Coinbase:   g.Coinbase,
		Alloc:      alloc,
		BaseFee:    new(big.Int).Set(g.BaseFee),
	}
}

// StartGethNode starts go-ethereum on the genesis with its HTTP server on
// 127.0.0.1 (a free port) serving the eth, net and web3 namespaces, every
// other setting at go-ethereum's defaults (in-memory path-scheme state,
// 50M gas cap for eth_call, 1000-call batches), except the block gas ceiling,
// which follows the genesis gas limit so that the chain keeps it.
func StartGethNode(g *chain.Genesis) (*GethNode, error) {
	n := &GethNode{prevLog: log.Root()}
	log.SetDefault(log.NewLogger(log.DiscardHandler()))
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = "" // in memory
	nodeConf.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0}
	nodeConf.HTTPHost = "127.0.0.1"
	nodeConf.HTTPPort = 0
	nodeConf.HTTPModules = []string{"eth", "net", "web3"}
	nodeConf.AuthPort = 0
	nodeConf.UseLightweightKDF = true
	stack, err := node.New(&nodeConf)
	if err != nil {
		log.SetDefault(n.prevLog)
		return nil, fmt.Errorf("geth node: %w", err)
	}
	n.stack = stack
	ethConf := ethconfig.Defaults
	ethConf.Genesis = GethGenesis(g)
	ethConf.NetworkId = g.ChainID
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.TxPool.NoLocals = true
	ethConf.Miner.GasCeil = g.GasLimit
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("geth eth service: %w", err), n.Stop())
	}
	n.eth = backend
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]gethrpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})
	if err := stack.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start geth: %w", err), n.Stop())
	}
	if n.beacon, err = catalyst.NewSimulatedBeacon(0, common.Address{}, backend); err != nil {
		return nil, errors.Join(fmt.Errorf("geth simulated beacon: %w", err), n.Stop())
	}
	n.url = stack.HTTPEndpoint()
	return n, nil
}

// URL is the node's JSON-RPC HTTP endpoint.
func (n *GethNode) URL() string { return n.url }

// Head is the number of the newest block.
func (n *GethNode) Head() uint64 { return n.eth.BlockChain().CurrentBlock().Number.Uint64() }

// SealAll seals blocks until the transaction pool holds no transaction, at
// most maxBlocks of them.
func (n *GethNode) SealAll(ctx context.Context, maxBlocks int) error {
	for range maxBlocks {
		pending, queued := n.eth.TxPool().Stats()
		if pending == 0 && queued == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		before := n.Head()
		n.beacon.Commit()
		if n.Head() != before+1 {
			return fmt.Errorf("geth sealed no block on %d (%d pending, %d queued transactions)", before, pending, queued)
		}
	}
	pending, queued := n.eth.TxPool().Stats()
	return fmt.Errorf("geth still has %d pending and %d queued transactions after %d blocks", pending, queued, maxBlocks)
}

// Stop shuts the node down and restores go-ethereum's default logger.
func (n *GethNode) Stop() error {
	var err error
	if n.beacon != nil {
		err = n.beacon.Stop()
		n.beacon = nil
	}
	if n.stack != nil {
		done := make(chan error, 1)
		go func() { done <- n.stack.Close() }()
		select {
		case e := <-done:
			err = errors.Join(err, e)
		case <-time.After(time.Minute):
			err = errors.Join(err, errors.New("geth node did not close within a minute"))
		}
		n.stack = nil
	}
	if n.prevLog != nil {
		log.SetDefault(n.prevLog)
		n.prevLog = nil
	}
	return err
}
