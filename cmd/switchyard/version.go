package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the software and protocol versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pv := nodeinfo.DefaultProtocolVersion
			fmt.Fprintf(cmd.OutOrStdout(), "switchyard %s\np2p protocol %d, block protocol %d, app protocol %d\n",
				node.Version, pv.P2P, pv.Block, pv.App)
			return nil
		},
	}
}
