package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/valyala/fasthttp"

	"github.com/kestrel-l2/kestrel/rpc"
)

// forwarder sends transactions to the sequencer's JSON-RPC endpoint, one batch
// of eth_sendRawTransaction per call, and hands back the sequencer's answers —
// its hash or its error with code, message and data — unchanged.
type forwarder struct {
	url    string
	client *fasthttp.Client
}

func newForwarder(endpoint string) *forwarder {
	return &forwarder{url: endpoint, client: &fasthttp.Client{
		Name: "kestrel-replica", MaxConnsPerHost: 256, ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Minute, MaxResponseBodySize: 64 << 20,
	}}
}

func (f *forwarder) close() { f.client.CloseIdleConnections() }

type rpcAnswer struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// errSequencerUnreachable wraps transport failures: the transaction may or may
// not have reached the sequencer.
var errSequencerUnreachable = errors.New("sequencer unreachable")

// SendRawTransactions implements sequencer.Forwarder.
func (f *forwarder) SendRawTransactions(ctx context.Context, raws [][]byte) ([]common.Hash, []error) {
	hashes := make([]common.Hash, len(raws))
	errs := make([]error, len(raws))
	fail := func(err error) ([]common.Hash, []error) {
		for i := range errs {
			errs[i] = err
		}
		return hashes, errs
	}
	var body bytes.Buffer
	body.WriteByte('[')
	for i, raw := range raws {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"jsonrpc":"2.0","id":`)
		body.WriteString(strconv.Itoa(i))
		body.WriteString(`,"method":"eth_sendRawTransaction","params":["`)
		body.WriteString(hexutil.Encode(raw))
		body.WriteString(`"]}`)
	}
	body.WriteByte(']')
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(f.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body.Bytes())
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := f.client.DoDeadline(req, resp, deadline); err != nil {
		return fail(fmt.Errorf("%w: %s: %v", errSequencerUnreachable, redact(f.url), err))
	}
	if sc := resp.StatusCode(); sc != fasthttp.StatusOK {
		return fail(fmt.Errorf("%w: %s answered HTTP %d", errSequencerUnreachable, redact(f.url), sc))
	}
	var answers []rpcAnswer
	if err := json.Unmarshal(resp.Body(), &answers); err != nil {
		// A batch-level error comes back as one object.
		var one rpcAnswer
		if json.Unmarshal(resp.Body(), &one) == nil && one.Error != nil {
			return fail(&rpc.Error{Code: one.Error.Code, Message: one.Error.Message, Data: rawData(one.Error.Data)})
		}
		return fail(fmt.Errorf("%w: malformed answer from %s: %v", errSequencerUnreachable, redact(f.url), err))
	}
	seen := make([]bool, len(raws))
	for _, a := range answers {
		i, err := strconv.Atoi(string(a.ID))
		if err != nil || i < 0 || i >= len(raws) || seen[i] {
			continue
		}
		seen[i] = true
		if a.Error != nil {
			errs[i] = &rpc.Error{Code: a.Error.Code, Message: a.Error.Message, Data: rawData(a.Error.Data)}
			continue
		}
		var h common.Hash
		if err := json.Unmarshal(a.Result, &h); err != nil {
			errs[i] = fmt.Errorf("%w: malformed hash from the sequencer: %v", errSequencerUnreachable, err)
			continue
		}
		hashes[i] = h
	}
	for i, ok := range seen {
		if !ok {
			errs[i] = fmt.Errorf("%w: no answer for transaction %d of the batch", errSequencerUnreachable, i)
		}
	}
	return hashes, errs
}

func rawData(d json.RawMessage) any {
	if len(d) == 0 || string(d) == "null" {
		return nil
	}
	return d
}

// redact drops credentials from a URL before it is logged or returned.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "sequencer"
	}
	p.User = nil
	return p.String()
}
