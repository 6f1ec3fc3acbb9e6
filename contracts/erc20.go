package contracts

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

var (
	// ERC20TransferTopic is topic0 of Transfer(address,address,uint256).
	ERC20TransferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	// ERC20ApprovalTopic is topic0 of Approval(address,address,uint256).
	ERC20ApprovalTopic = crypto.Keccak256Hash([]byte("Approval(address,address,uint256)"))
)

// ERC20 revert reasons, as returned in Error(string) revert data.
const (
	ERC20ErrInsufficientBalance   = "ERC20: transfer amount exceeds balance"
	ERC20ErrInsufficientAllowance = "ERC20: insufficient allowance"
	ERC20ErrTransferToZero        = "ERC20: transfer to the zero address"
)

// ERC20 returns the embedded artifact of src/ERC20.sol.
func ERC20() *Artifact { return MustLoad("ERC20") }

// ERC20DeployData returns creation code plus the packed constructor
// arguments; the whole supply is minted to the deployer.
func ERC20DeployData(name, symbol string, supply *big.Int) ([]byte, error) {
	return ERC20().DeployData(name, symbol, supply)
}

// ERC20TransferData returns calldata for transfer(to, amount).
func ERC20TransferData(to common.Address, amount *big.Int) []byte {
	return mustPack(ERC20(), "transfer", to, amount)
}

// ERC20TransferFromData returns calldata for transferFrom(from, to, amount).
func ERC20TransferFromData(from, to common.Address, amount *big.Int) []byte {
	return mustPack(ERC20(), "transferFrom", from, to, amount)
}

// ERC20ApproveData returns calldata for approve(spender, amount).
func ERC20ApproveData(spender common.Address, amount *big.Int) []byte {
	return mustPack(ERC20(), "approve", spender, amount)
}

// ERC20BalanceOfData returns calldata for balanceOf(addr).
func ERC20BalanceOfData(addr common.Address) []byte {
	return mustPack(ERC20(), "balanceOf", addr)
}

// ERC20AllowanceData returns calldata for allowance(owner, spender).
func ERC20AllowanceData(owner, spender common.Address) []byte {
	return mustPack(ERC20(), "allowance", owner, spender)
}

// ERC20TotalSupplyData returns calldata for totalSupply().
func ERC20TotalSupplyData() []byte {
	return mustPack(ERC20(), "totalSupply")
}

// ERC20UnpackUint256 decodes the return data of balanceOf, allowance or
// totalSupply (all a single uint256).
func ERC20UnpackUint256(ret []byte) (*big.Int, error) {
	return unpackUint256(ERC20(), "totalSupply", ret)
}

// ERC20Transfer is a decoded Transfer event.
type ERC20Transfer struct {
	From  common.Address
	To    common.Address
	Value *big.Int
}

// ParseERC20Transfer decodes a Transfer log. It does not check log.Address.
func ParseERC20Transfer(log *types.Log) (*ERC20Transfer, error) {
	ev := new(ERC20Transfer)
	if err := unpackLog(ERC20(), "Transfer", ev, log); err != nil {
		return nil, err
	}
	return ev, nil
}

// ERC20Approval is a decoded Approval event.
type ERC20Approval struct {
	Owner   common.Address
	Spender common.Address
	Value   *big.Int
}

// ParseERC20Approval decodes an Approval log. It does not check log.Address.
func ParseERC20Approval(log *types.Log) (*ERC20Approval, error) {
	ev := new(ERC20Approval)
	if err := unpackLog(ERC20(), "Approval", ev, log); err != nil {
		return nil, err
	}
	return ev, nil
}
