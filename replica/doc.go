// Package replica will hold the replica role: a replica applies the sequencer's state-diff stream without re-executing and serves the read side of the JSON-RPC API.
//
// Nothing is built here yet: this package is a placeholder for a later issue and
// exports nothing. See docs/ARCHITECTURE.md for the plan.
package replica
