package nodeinfo_test

import (
	"errors"
	"fmt"

	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

func ExampleNodeInfo_Validate() {
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              "a50bf51d1e331c65e9f9f895cfe1825a290edf48",
		ListenAddr:      "tcp://1.2.3.4:26656",
		Network:         "test-chain",
		Version:         "0.38.26",
		Channels:        []byte{0x00, 0x40, 0x40},
		Moniker:         "",
	}
	err := ni.Validate()
	fmt.Println(errors.Is(err, nodeinfo.ErrInvalidChannels), errors.Is(err, nodeinfo.ErrInvalidMoniker))
	// Output: true true
}

func ExampleNodeInfo_CompatibleWith() {
	ours := nodeinfo.NodeInfo{ProtocolVersion: nodeinfo.DefaultProtocolVersion, Network: "a", Channels: []byte{0x40}}
	theirs := ours
	theirs.Network = "b"
	var ie *nodeinfo.IncompatibleError
	if err := ours.CompatibleWith(theirs); errors.As(err, &ie) {
		fmt.Println(ie.Reason)
		fmt.Println(err)
	}
	// Output:
	// network
	// nodeinfo: network mismatch: ours "a", theirs "b"
}
