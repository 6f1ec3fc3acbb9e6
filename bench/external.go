package bench

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
)

// External prepares workloads on a node the bench did not start: it funds the
// bench senders (and deploys and hands out the ERC-20) from dev account 0 with
// ordinary transactions, then reads the senders' nonces so that the workload's
// transactions follow them. The baseline still starts from Workload.Alloc with
// those nonces and that token address, i.e. an equivalent pre-state.
type External struct {
	URL    string
	funder *ecdsa.PrivateKey
	token  common.Address // deployed ERC-20, zero until needed
}

// NewExternal targets the node at url, funding from the dev mnemonic's account 0.
func NewExternal(url string) *External {
	return &External{URL: url, funder: chain.DevAccounts()[0].Key}
}

// Prepare funds what cfg needs and returns cfg completed with the node's chain
// id, the senders' current nonces and the token address.
func (e *External) Prepare(ctx context.Context, cfg WorkloadConfig) (WorkloadConfig, error) {
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	c, err := newRPCClient(e.URL, 4)
	if err != nil {
		return cfg, err
	}
	defer c.close()
	var id hexutil.Uint64
	if err := c.call(&id, "eth_chainId"); err != nil {
		return cfg, err
	}
	cfg.ChainID = uint64(id)
	addrs := make([]common.Address, cfg.Senders)
	parallel(cfg.Senders, func(i int) { addrs[i] = crypto.PubkeyToAddress(SenderKey(cfg.Seed, i).PublicKey) })
	perSender := uint64((cfg.Txs+cfg.Extra+cfg.Senders-1)/cfg.Senders) + 1
	gas := uint64(ETHTransferGas)
	if cfg.Kind == KindERC20 {
		gas = ERC20TransferGas
	}
	// Twice the worst-case cost of the sender's transactions.
	need := new(big.Int).Mul(new(big.Int).SetUint64(gas), GasFeeCap)
	need.Add(need, big.NewInt(1_000_000_001_000))
	need.Mul(need, new(big.Int).SetUint64(2*perSender))
	bals, err := c.balances(addrs, nil)
	if err != nil {
		return cfg, err
	}
	var fund []types.TxData
	for i, a := range addrs {
		if bals[i].Cmp(need) < 0 {
			to := a
			fund = append(fund, &types.DynamicFeeTx{Gas: ETHTransferGas, To: &to, Value: new(big.Int).Sub(need, bals[i])})
		}
	}
	if err := e.sendFromFunder(ctx, c, cfg.ChainID, fund); err != nil {
		return cfg, fmt.Errorf("fund senders: %w", err)
	}
	if cfg.Kind == KindERC20 {
		if e.token == (common.Address{}) {
			if err := e.deployToken(ctx, c, cfg.ChainID); err != nil {
				return cfg, err
			}
		}
		toks, err := c.balances(addrs, &e.token)
		if err != nil {
			return cfg, err
		}
		wantTok := new(big.Int).Mul(big.NewInt(1_000_001_000_000), new(big.Int).SetUint64(perSender))
		var give []types.TxData
		for i, a := range addrs {
			if toks[i].Cmp(wantTok) < 0 {
				give = append(give, &types.DynamicFeeTx{Gas: 100_000, To: &e.token, Data: contracts.ERC20TransferData(a, SenderTokens)})
			}
		}
		if err := e.sendFromFunder(ctx, c, cfg.ChainID, give); err != nil {
			return cfg, fmt.Errorf("hand out tokens: %w", err)
		}
		cfg.Token = e.token
	}
	nonces, err := c.nonces(addrs)
	if err != nil {
		return cfg, err
	}
	cfg.StartNonces = make(map[common.Address]uint64, len(addrs))
	for i, a := range addrs {
		cfg.StartNonces[a] = nonces[i]
	}
	return cfg, nil
}

func (e *External) deployToken(ctx context.Context, c *rpcClient, chainID uint64) error {
	funder := crypto.PubkeyToAddress(e.funder.PublicKey)
	var nonce hexutil.Uint64
	if err := c.call(&nonce, "eth_getTransactionCount", funder, "pending"); err != nil {
		return err
	}
	supply := new(big.Int).Mul(SenderTokens, big.NewInt(1_000_000))
	data, err := contracts.ERC20DeployData("Kestrel Bench Token", "KBT", supply)
	if err != nil {
		return err
	}
	if err := e.sendFromFunder(ctx, c, chainID, []types.TxData{&types.DynamicFeeTx{Gas: 3_000_000, Data: data}}); err != nil {
		return fmt.Errorf("deploy token: %w", err)
	}
	token := crypto.CreateAddress(funder, uint64(nonce))
	var code hexutil.Bytes
	if err := c.call(&code, "eth_getCode", token, "pending"); err != nil {
		return err
	}
	if len(code) == 0 {
		return fmt.Errorf("token deployment at %s left no code", token)
	}
	e.token = token
	return nil
}

// sendFromFunder signs txs from the funder with consecutive nonces and sends them
// in groups small enough for a pool's nonce-gap limit, waiting for each group to
// be included.
func (e *External) sendFromFunder(ctx context.Context, c *rpcClient, chainID uint64, txs []types.TxData) error {
	if len(txs) == 0 {
		return nil
	}
	funder := crypto.PubkeyToAddress(e.funder.PublicKey)
	var n hexutil.Uint64
	if err := c.call(&n, "eth_getTransactionCount", funder, "pending"); err != nil {
		return err
	}
	nonce := uint64(n)
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(chainID))
	cid := new(big.Int).SetUint64(chainID)
	const group = 48
	for first := 0; first < len(txs); first += group {
		var calls []rpcCall
		for _, inner := range txs[first:min(first+group, len(txs))] {
			d := inner.(*types.DynamicFeeTx)
			d.ChainID, d.Nonce, d.GasTipCap, d.GasFeeCap = cid, nonce, GasTipCap, GasFeeCap
			nonce++
			tx, err := types.SignNewTx(e.funder, signer, d)
			if err != nil {
				return err
			}
			raw, _ := tx.MarshalBinary()
			calls = append(calls, rpcCall{"eth_sendRawTransaction", []any{hexutil.Bytes(raw)}})
		}
		rs, err := c.batch(calls)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Error != nil {
				return r.Error
			}
		}
		for {
			got, err := c.nonces([]common.Address{funder})
			if err != nil {
				return err
			}
			if got[0] >= nonce {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}
