// Package stream carries the sequencer's output to replicas: a compact,
// checksummed, compressed encoding of mini-blocks and signed block headers
// (codec*.go), and its transport on NATS JetStream — an embedded nats-server
// (server.go), the sequencer's publisher (publisher.go) and the replicas'
// subscriber (subscriber.go).
//
// Two streams hold the chain: NAME_MINI, whose message sequence number is the
// mini-block index, and NAME_HEADERS, whose sequence number is the block number.
// Publishing asks JetStream to expect the previous sequence number, so every
// message lands exactly at its index and a republished one is refused: the
// sequence numbers are the chain's own.
package stream
