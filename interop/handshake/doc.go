// Package handshake tests Switchyard's p2p/transport, used as a library,
// against a real CometBFT v0.38 node: the SecretConnection handshake and the
// NodeInfo exchange in both directions. It has only tests.
package handshake
