package contracts

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

const (
	// ReverterReason is the Error(string) reason of revertWithReason().
	ReverterReason = "Reverter: always reverts"
	// ReverterRequireReason is the reason of requireTrue(false).
	ReverterRequireReason = "Reverter: requirement failed"
	// ReverterCustomErrorCode and ReverterCustomErrorMessage are the
	// arguments of the CustomError raised by revertWithCustomError().
	ReverterCustomErrorCode    = 42
	ReverterCustomErrorMessage = "custom"
)

var (
	// ReverterValueStoredTopic is topic0 of ValueStored(address,uint256,bytes).
	ReverterValueStoredTopic = crypto.Keccak256Hash([]byte("ValueStored(address,uint256,bytes)"))
	// ReverterCustomErrorSelector is the 4-byte selector of CustomError(uint256,string).
	ReverterCustomErrorSelector = crypto.Keccak256([]byte("CustomError(uint256,string)"))[:4]
)

// Reverter returns the embedded artifact of src/Reverter.sol.
func Reverter() *Artifact { return MustLoad("Reverter") }

// ReverterDeployData returns the creation code of Reverter (no constructor
// arguments). The returned slice is freshly allocated.
func ReverterDeployData() []byte {
	return common.CopyBytes(Reverter().Bytecode)
}

// ReverterRevertWithReasonData returns calldata for revertWithReason().
func ReverterRevertWithReasonData() []byte {
	return mustPack(Reverter(), "revertWithReason")
}

// ReverterRevertWithCustomErrorData returns calldata for revertWithCustomError().
func ReverterRevertWithCustomErrorData() []byte {
	return mustPack(Reverter(), "revertWithCustomError")
}

// ReverterRequireTrueData returns calldata for requireTrue(ok).
func ReverterRequireTrueData(ok bool) []byte {
	return mustPack(Reverter(), "requireTrue", ok)
}

// ReverterStoreData returns calldata for store(value, data).
func ReverterStoreData(value *big.Int, data []byte) []byte {
	if data == nil {
		data = []byte{}
	}
	return mustPack(Reverter(), "store", value, data)
}

// ReverterValueData returns calldata for value().
func ReverterValueData() []byte {
	return mustPack(Reverter(), "value")
}

// ReverterUnpackValue decodes the return data of value().
func ReverterUnpackValue(ret []byte) (*big.Int, error) {
	return unpackUint256(Reverter(), "value", ret)
}

// ReverterValueStored is a decoded ValueStored event.
type ReverterValueStored struct {
	Sender common.Address
	Value  *big.Int
	Data   []byte
}

// ParseReverterValueStored decodes a ValueStored log. It does not check
// log.Address.
func ParseReverterValueStored(log *types.Log) (*ReverterValueStored, error) {
	ev := new(ReverterValueStored)
	if err := unpackLog(Reverter(), "ValueStored", ev, log); err != nil {
		return nil, err
	}
	return ev, nil
}
