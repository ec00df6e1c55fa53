package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// errKeyExists is returned by gen-node-key when node_key.json already exists.
var errKeyExists = errors.New("node key already exists (it is the node's identity; move it away first to replace it)")

func newGenNodeKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "gen-node-key",
		Aliases: []string{"gen_node_key"},
		Short:   "Generate HOME/config/node_key.json and print the new node ID",
		Long: `Generate a node key (Ed25519, CometBFT's node_key.json format, mode 0600) in
HOME/config/node_key.json and print the node ID, as CometBFT's gen-node-key does.
An existing key file is never overwritten: the command fails instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			path := config.NodeKeyFile(home)
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s: %w", path, errKeyExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			nk, err := key.GenNodeKey(nil)
			if err != nil {
				return err
			}
			if err := nk.SaveAs(path); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), nk.ID())
			return nil
		},
	}
}
