package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

func newShowNodeIDCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show-node-id",
		Aliases: []string{"show_node_id"},
		Short:   "Print this node's ID (40 lower-case hex characters)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			nk, err := key.LoadNodeKey(config.NodeKeyFile(home))
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w (run 'switchyard init --home %s' to create one, or check --home)", err, home)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), nk.ID())
			return nil
		},
	}
}
