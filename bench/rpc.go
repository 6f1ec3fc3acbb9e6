package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/valyala/fasthttp"

	"github.com/kestrel-l2/kestrel/contracts"
)

// maxBatch is the most calls the bench puts in one JSON-RPC batch (Kestrel's
// default limit is 1000).
const maxBatch = 1000

// rpcClient is a JSON-RPC over HTTP client on keep-alive connections.
type rpcClient struct {
	hc  *fasthttp.HostClient
	url string
	// tag is the block tag of nonce and balance reads ("pending" if empty).
	tag string
}

func (c *rpcClient) stateTag() string {
	if c.tag == "" {
		return "pending"
	}
	return c.tag
}

func newRPCClient(rawURL string, maxConns int) (*rpcClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rpc url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("rpc url %q: want http:// or https://", rawURL)
	}
	tls := u.Scheme == "https"
	return &rpcClient{url: rawURL, hc: &fasthttp.HostClient{
		Addr: fasthttp.AddMissingPort(u.Host, tls), IsTLS: tls, MaxConns: maxConns,
		MaxConnWaitTimeout: 5 * time.Minute, MaxIdleConnDuration: time.Minute,
		ReadTimeout: 5 * time.Minute, WriteTimeout: time.Minute, MaxResponseBodySize: 1 << 30,
		ReadBufferSize: 16 << 10, WriteBufferSize: 64 << 10, NoDefaultUserAgentHeader: true,
	}}, nil
}

func (c *rpcClient) close() { c.hc.CloseIdleConnections() }

// post sends one request body and returns a copy of the response body.
func (c *rpcClient) post(body []byte, timeout time.Duration) ([]byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := c.hc.DoTimeout(req, resp, timeout); err != nil {
		return nil, err
	}
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		return nil, fmt.Errorf("http status %d: %.200s", code, resp.Body())
	}
	return append([]byte(nil), resp.Body()...), nil
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

type rpcResponse struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcCall struct {
	Method string
	Params []any
}

// appendCall appends one JSON-RPC request object.
func appendCall(dst []byte, id int, method string, params []any) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"method":"`...)
	dst = append(dst, method...)
	dst = append(dst, `","params":`...)
	dst = append(dst, p...)
	return append(dst, '}'), nil
}

// call makes one call and decodes its result into out (when not nil).
func (c *rpcClient) call(out any, method string, params ...any) error {
	body, err := appendCall(nil, 1, method, params)
	if err != nil {
		return err
	}
	raw, err := c.post(body, time.Minute)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s: decode response: %w", method, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %w", method, r.Error)
	}
	if out != nil {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// batch makes the calls in batches of at most maxBatch and returns the responses
// in call order.
func (c *rpcClient) batch(calls []rpcCall) ([]rpcResponse, error) {
	out := make([]rpcResponse, len(calls))
	for start := 0; start < len(calls); start += maxBatch {
		end := min(start+maxBatch, len(calls))
		body := []byte{'['}
		for i := start; i < end; i++ {
			if i > start {
				body = append(body, ',')
			}
			var err error
			if body, err = appendCall(body, i, calls[i].Method, calls[i].Params); err != nil {
				return nil, err
			}
		}
		body = append(body, ']')
		raw, err := c.post(body, 5*time.Minute)
		if err != nil {
			return nil, err
		}
		var rs []rpcResponse
		if err := json.Unmarshal(raw, &rs); err != nil {
			return nil, fmt.Errorf("decode batch response: %w (%.200s)", err, raw)
		}
		if len(rs) != end-start {
			return nil, fmt.Errorf("batch of %d calls answered with %d responses", end-start, len(rs))
		}
		for _, r := range rs {
			if r.ID < start || r.ID >= end {
				return nil, fmt.Errorf("batch response with unexpected id %d", r.ID)
			}
			out[r.ID] = r
		}
	}
	return out, nil
}

// nonces returns the nonce of each address at the client's state tag.
func (c *rpcClient) nonces(addrs []common.Address) ([]uint64, error) {
	calls := make([]rpcCall, len(addrs))
	for i, a := range addrs {
		calls[i] = rpcCall{"eth_getTransactionCount", []any{a, c.stateTag()}}
	}
	rs, err := c.batch(calls)
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(addrs))
	for i, r := range rs {
		if r.Error != nil {
			return nil, fmt.Errorf("eth_getTransactionCount %s: %w", addrs[i], r.Error)
		}
		var n hexutil.Uint64
		if err := json.Unmarshal(r.Result, &n); err != nil {
			return nil, err
		}
		out[i] = uint64(n)
	}
	return out, nil
}

// balances returns each address's ETH balance, or its balance of token when
// token is not nil, at the client's state tag.
func (c *rpcClient) balances(addrs []common.Address, token *common.Address) ([]*big.Int, error) {
	calls := make([]rpcCall, len(addrs))
	for i, a := range addrs {
		if token == nil {
			calls[i] = rpcCall{"eth_getBalance", []any{a, c.stateTag()}}
		} else {
			msg := map[string]any{"to": *token, "data": hexutil.Bytes(contracts.ERC20BalanceOfData(a))}
			calls[i] = rpcCall{"eth_call", []any{msg, c.stateTag()}}
		}
	}
	rs, err := c.batch(calls)
	if err != nil {
		return nil, err
	}
	out := make([]*big.Int, len(addrs))
	for i, r := range rs {
		if r.Error != nil {
			return nil, fmt.Errorf("balance of %s: %w", addrs[i], r.Error)
		}
		if token == nil {
			var v hexutil.Big
			if err := json.Unmarshal(r.Result, &v); err != nil {
				return nil, err
			}
			out[i] = v.ToInt()
		} else {
			var ret hexutil.Bytes
			if err := json.Unmarshal(r.Result, &ret); err != nil {
				return nil, err
			}
			if out[i], err = contracts.ERC20UnpackUint256(ret); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// sendErrorClass sorts the errors eth_sendRawTransaction may answer during a
// throughput run.
type sendErrorClass int

const (
	sendFatal sendErrorClass = iota
	// sendDone: the node already has the transaction (a retry of an accepted one).
	sendDone
	// sendRetry: back-pressure (pool full, nonce too far ahead); try again later.
	sendRetry
)

func classifySendError(msg string) sendErrorClass {
	switch {
	case strings.Contains(msg, "already known"), strings.Contains(msg, "nonce too low"):
		return sendDone
	case strings.Contains(msg, "txpool is full"), strings.Contains(msg, "nonce too high"),
		strings.Contains(msg, "account limit exceeded"):
		return sendRetry
	}
	return sendFatal
}

var errTimeout = errors.New("timed out")

// stallTimeout is how long the throughput phase waits without any sender's
// nonce moving before it gives up.
const stallTimeout = time.Minute
