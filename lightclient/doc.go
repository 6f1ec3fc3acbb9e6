// Package lightclient will hold the lightclient role: the light client verifies RPC answers against roots from L1 and sequencer-signed headers.
//
// Nothing is built here yet: this package is a placeholder for a later issue and
// exports nothing. See docs/ARCHITECTURE.md for the plan.
package lightclient
