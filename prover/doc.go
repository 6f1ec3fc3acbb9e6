// Package prover will hold the prover role: provers turn state diffs into gnark proofs.
//
// Nothing is built here yet: this package is a placeholder for a later issue and
// exports nothing. See docs/ARCHITECTURE.md for the plan.
package prover
