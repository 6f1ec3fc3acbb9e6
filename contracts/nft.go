package contracts

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Storage slots of src/NFT.sol, for writing a collection into a genesis
// allocation: name and symbol (short strings), nextId (the next id minted,
// also the total supply), and the mappings ownerOf (id => address), balanceOf
// (address => count), getApproved (id => address) and isApprovedForAll
// (owner => operator => bool).
const (
	NFTSlotName              = 0
	NFTSlotSymbol            = 1
	NFTSlotNextID            = 2
	NFTSlotOwners            = 3
	NFTSlotBalances          = 4
	NFTSlotTokenApprovals    = 5
	NFTSlotOperatorApprovals = 6
)

// NFT revert reasons, as returned in Error(string) revert data.
const (
	NFTErrNonexistentToken = "NFT: nonexistent token"
	NFTErrNotApproved      = "NFT: caller not owner nor approved"
	NFTErrIncorrectOwner   = "NFT: transfer from incorrect owner"
	NFTErrMintToZero       = "NFT: mint to the zero address"
)

var (
	// NFTTransferTopic is topic0 of Transfer(address,address,uint256), the
	// same as ERC-20's; ERC-721 indexes the id as a third topic.
	NFTTransferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	// NFTApprovalTopic is topic0 of Approval(address,address,uint256).
	NFTApprovalTopic = crypto.Keccak256Hash([]byte("Approval(address,address,uint256)"))
	// NFTApprovalForAllTopic is topic0 of ApprovalForAll(address,address,bool).
	NFTApprovalForAllTopic = crypto.Keccak256Hash([]byte("ApprovalForAll(address,address,bool)"))
)

// NFT returns the embedded artifact of src/NFT.sol.
func NFT() *Artifact { return MustLoad("NFT") }

// NFTDeployData returns creation code plus the packed constructor arguments.
func NFTDeployData(name, symbol string) ([]byte, error) {
	return NFT().DeployData(name, symbol)
}

// NFTMintData returns calldata for mint(to).
func NFTMintData(to common.Address) []byte { return mustPack(NFT(), "mint", to) }

// NFTTransferFromData returns calldata for transferFrom(from, to, id).
func NFTTransferFromData(from, to common.Address, id *big.Int) []byte {
	return mustPack(NFT(), "transferFrom", from, to, id)
}

// NFTApproveData returns calldata for approve(to, id).
func NFTApproveData(to common.Address, id *big.Int) []byte {
	return mustPack(NFT(), "approve", to, id)
}

// NFTSetApprovalForAllData returns calldata for setApprovalForAll(operator, approved).
func NFTSetApprovalForAllData(operator common.Address, approved bool) []byte {
	return mustPack(NFT(), "setApprovalForAll", operator, approved)
}

// NFTOwnerOfData returns calldata for ownerOf(id).
func NFTOwnerOfData(id *big.Int) []byte { return mustPack(NFT(), "ownerOf", id) }

// NFTBalanceOfData returns calldata for balanceOf(owner).
func NFTBalanceOfData(owner common.Address) []byte { return mustPack(NFT(), "balanceOf", owner) }

// NFTGetApprovedData returns calldata for getApproved(id).
func NFTGetApprovedData(id *big.Int) []byte { return mustPack(NFT(), "getApproved", id) }

// NFTTotalSupplyData returns calldata for totalSupply().
func NFTTotalSupplyData() []byte { return mustPack(NFT(), "totalSupply") }

// NFTUnpackUint256 decodes the return data of mint, balanceOf or totalSupply
// (all a single uint256).
func NFTUnpackUint256(ret []byte) (*big.Int, error) {
	return unpackUint256(NFT(), "totalSupply", ret)
}

// NFTUnpackAddress decodes the return data of ownerOf or getApproved (a
// single address).
func NFTUnpackAddress(ret []byte) (common.Address, error) {
	out, err := NFT().ABI.Unpack("ownerOf", ret)
	if err != nil {
		return common.Address{}, fmt.Errorf("contracts: unpack NFT.ownerOf: %w", err)
	}
	a, ok := out[0].(common.Address)
	if !ok {
		return common.Address{}, fmt.Errorf("contracts: unpack NFT.ownerOf: unexpected type %T", out[0])
	}
	return a, nil
}

// NFTOwnerSlot is the storage slot of ownerOf[id].
func NFTOwnerSlot(id *big.Int) common.Hash {
	return crypto.Keccak256Hash(common.BigToHash(id).Bytes(), common.BigToHash(big.NewInt(NFTSlotOwners)).Bytes())
}

// NFTBalanceSlot is the storage slot of balanceOf[owner].
func NFTBalanceSlot(owner common.Address) common.Hash {
	return crypto.Keccak256Hash(common.LeftPadBytes(owner[:], 32), common.BigToHash(big.NewInt(NFTSlotBalances)).Bytes())
}

// NFTTransfer is a decoded ERC-721 Transfer event.
type NFTTransfer struct {
	From    common.Address
	To      common.Address
	TokenId *big.Int // named after the ABI's tokenId
}

// ParseNFTTransfer decodes a Transfer log. It does not check log.Address.
func ParseNFTTransfer(log *types.Log) (*NFTTransfer, error) {
	ev := new(NFTTransfer)
	if err := unpackLog(NFT(), "Transfer", ev, log); err != nil {
		return nil, err
	}
	return ev, nil
}
