package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
)

// JSON-RPC error codes used by the server.
const (
	CodeParseError     = -32700 // malformed JSON
	CodeInvalidRequest = -32600 // not a valid JSON-RPC 2.0 request (also: batch too large, body too large)
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603 // a handler panicked
	CodeDefault        = -32000 // backend errors (go-ethereum's default code)
	CodeTimeout        = -32002 // Config.RequestTimeout passed (go-ethereum's code and message)
	CodeTooLarge       = -32003 // answer over Config.MaxResponseBytes (go-ethereum's code and message)
	CodeLimitExceeded  = -32005 // eth_getLogs block range / result limits; too many concurrent requests
	CodeReverted       = 3      // execution reverted; data holds the revert data
	CodeTxSyncTimeout  = 4      // EIP-7966: receipt not available in time; data holds the tx hash
)

// Error is a JSON-RPC error with a code and optional data. Backends may return
// errors implementing ErrorCode() int (and ErrorData() any), like go-ethereum's
// rpc.Error and rpc.DataError; the server answers with that code and data. All
// other backend errors are answered with CodeDefault and the error's message.
type Error struct {
	Code    int
	Message string
	Data    any // marshaled with encoding/json; nil: no data member
}

func (e *Error) Error() string  { return e.Message }
func (e *Error) ErrorCode() int { return e.Code }
func (e *Error) ErrorData() any { return e.Data }

func invalidParams(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

func limitExceeded(format string, args ...any) *Error {
	return &Error{Code: CodeLimitExceeded, Message: fmt.Sprintf(format, args...)}
}

// errorFields derives the JSON-RPC error members of err.
func errorFields(err error) (code int, msg string, data any) {
	var rpcErr *Error
	if errors.As(err, &rpcErr) {
		return rpcErr.Code, rpcErr.Message, rpcErr.Data
	}
	var revert *RevertError
	if errors.As(err, &revert) {
		return CodeReverted, revert.Error(), rawJSON(appendBytesHex(nil, revert.Data))
	}
	code, msg = CodeDefault, err.Error()
	var ec interface{ ErrorCode() int }
	if errors.As(err, &ec) {
		code = ec.ErrorCode()
	}
	var de interface{ ErrorData() any }
	if errors.As(err, &de) {
		data = de.ErrorData()
	}
	return code, msg, data
}

// rawJSON is error data that is already encoded.
type rawJSON []byte

// appendError appends a complete error response object.
func appendError(dst []byte, id []byte, err error) []byte {
	code, msg, data := errorFields(err)
	return appendErrorObject(dst, id, code, msg, data)
}

func appendErrorObject(dst []byte, id []byte, code int, msg string, data any) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		dst = append(dst, jsonNull...)
	} else {
		dst = append(dst, id...)
	}
	dst = append(dst, `,"error":{"code":`...)
	dst = appendInt(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	if data != nil {
		var enc []byte
		switch d := data.(type) {
		case rawJSON:
			enc = d
		default:
			var err error
			if enc, err = json.Marshal(d); err != nil {
				enc = nil
			}
		}
		if enc != nil && !isNull(enc) {
			dst = append(dst, `,"data":`...)
			dst = append(dst, enc...)
		}
	}
	return append(dst, '}', '}')
}

func appendInt(dst []byte, v int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		return appendUint(dst, uint64(-int64(v)))
	}
	return appendUint(dst, uint64(v))
}

func appendUint(dst []byte, v uint64) []byte {
	if v == 0 {
		return append(dst, '0')
	}
	var buf [20]byte
	i := len(buf)
	for v > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[i:]...)
}
