package conformance

import (
	"encoding/json"

	"github.com/kestrel-l2/kestrel/contracts"
)

// filterRequest builds a request whose first parameter is a filter id, which
// each node chose for itself.
func filterRequest(name, method string, id string, rest ...any) *request {
	return &request{name: name, method: method, params: append([]any{id}, rest...), optional: true}
}

// runFilters compares the filter methods (eth_newFilter, eth_newBlockFilter,
// eth_getFilterLogs, eth_getFilterChanges, eth_uninstallFilter) where Kestrel
// serves them. Filter ids are chosen by each node and differ by design (the
// allow-list says so); every later request carries each node's own id.
func (c *comparer) runFilters(f *chainFacts) {
	w := f.w
	newFilter := func(name, method string, params ...any) (kid, gid string, ok bool) {
		r := &request{name: name, method: method, params: params, optional: true}
		ka, ga := c.pair(r, r.body(), r.body())
		var kr, gr rpcResponse
		if json.Unmarshal(ka, &kr) != nil || json.Unmarshal(ga, &gr) != nil || kr.Error != nil || gr.Error != nil {
			return "", "", false
		}
		if json.Unmarshal(kr.Result, &kid) != nil || json.Unmarshal(gr.Result, &gid) != nil {
			return "", "", false
		}
		return kid, gid, true
	}
	both := func(name, method, kid, gid string, rest ...any) {
		kr := filterRequest(name, method, kid, rest...)
		gr := filterRequest(name, method, gid, rest...)
		c.pair(kr, kr.body(), gr.body())
	}

	criteria := []map[string]any{
		{"fromBlock": "0x0", "toBlock": "latest", "address": w.token},
		{"fromBlock": "earliest", "topics": []any{contracts.ReverterValueStoredTopic}},
		{"blockHash": f.blocks[f.txs[0].block].hash},
		{},
	}
	for _, crit := range criteria {
		kid, gid, ok := newFilter("log filter", "eth_newFilter", crit)
		if !ok {
			continue
		}
		both("log filter", "eth_getFilterLogs", kid, gid)
		both("log filter, nothing new", "eth_getFilterChanges", kid, gid)
		both("log filter", "eth_uninstallFilter", kid, gid)
		both("log filter, uninstalled", "eth_uninstallFilter", kid, gid)
		both("log filter, uninstalled", "eth_getFilterLogs", kid, gid)
		both("log filter, uninstalled", "eth_getFilterChanges", kid, gid)
	}
	if kid, gid, ok := newFilter("block filter", "eth_newBlockFilter"); ok {
		both("block filter, nothing new", "eth_getFilterChanges", kid, gid)
		both("block filter", "eth_getFilterLogs", kid, gid)
		both("block filter", "eth_uninstallFilter", kid, gid)
	}
	newFilter("bad criteria", "eth_newFilter", map[string]any{"fromBlock": "0x5", "toBlock": "0x1"})
	newFilter("bad address", "eth_newFilter", map[string]any{"address": "0x12"})
	newFilter("missing params", "eth_newFilter")
	for _, m := range []string{"eth_getFilterLogs", "eth_getFilterChanges", "eth_uninstallFilter"} {
		r := filterRequest("unknown id", m, "0x1234")
		c.one(r)
	}
}
