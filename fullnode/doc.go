// Package fullnode will hold the fullnode role: a full node re-executes every block, checks every root and keeps full history.
//
// Nothing is built here yet: this package is a placeholder for a later issue and
// exports nothing. See docs/ARCHITECTURE.md for the plan.
package fullnode
