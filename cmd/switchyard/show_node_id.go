package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

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
				// init refuses a home that has config.toml; gen-node-key adds the key to it.
				create := "init"
				if _, cerr := os.Stat(config.ConfigFile(home)); cerr == nil {
					create = "gen-node-key"
				}
				return fmt.Errorf("%w (run 'switchyard %s --home %s' to create one, or check --home)", err, create, home)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), nk.ID())
			return nil
		},
	}
}
