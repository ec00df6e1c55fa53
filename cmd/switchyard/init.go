package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

func newInitCmd() *cobra.Command {
	var (
		chainID, moniker string
		force            bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write HOME/config/config.toml and HOME/config/node_key.json",
		Long: `Write a default config file and a node key into the home directory.

An existing config.toml is only replaced with --force. An existing node_key.json
is always kept (the node's identity does not change); delete it by hand to get a
new ID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			cfg := config.DefaultConfig()
			if chainID != "" {
				cfg.ChainID = chainID
			}
			if moniker != "" {
				cfg.Moniker = moniker
			}
			id, err := initHome(cmd.OutOrStdout(), home, cfg, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Initialized node %s in %s\n", id, home)
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain ID advertised to peers (default "+config.DefaultChainID+")")
	cmd.Flags().StringVar(&moniker, "moniker", "", "node name advertised to peers (default: the host name)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing config.toml")
	return cmd
}

// errConfigExists is returned by initHome when config.toml exists and force
// is false.
var errConfigExists = errors.New("config file already exists (use --force to overwrite)")

// initHome validates cfg, writes it to home's config.toml (refusing to
// replace an existing one unless force) and loads or generates the node key.
// It logs what it did to w and returns the node ID.
func initHome(w io.Writer, home string, cfg config.Config, force bool) (key.ID, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	cfgPath := config.ConfigFile(home)
	switch _, err := os.Stat(cfgPath); {
	case err == nil && !force:
		return "", fmt.Errorf("%s: %w", cfgPath, errConfigExists)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if err := config.WriteConfigFile(cfgPath, cfg); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "Wrote config file %s\n", cfgPath)
	keyPath := config.NodeKeyFile(home)
	_, statErr := os.Stat(keyPath)
	nk, err := key.LoadOrGenNodeKey(keyPath)
	if err != nil {
		return "", err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(w, "Generated node key %s\n", keyPath)
	} else {
		fmt.Fprintf(w, "Found node key %s\n", keyPath)
	}
	return nk.ID(), nil
}
