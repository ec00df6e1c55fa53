package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
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

An existing config.toml is only replaced with --force (and not if it is larger
than 16 MiB, which is no config.toml: remove it by hand). An existing node_key.json
is always kept (the node's identity does not change); delete it by hand to get a
new ID. init either completes or changes nothing: an existing node key that
cannot be read is reported before anything is written, and a failure half-way
removes (or, with --force, restores) what was written.`,
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

// saveNodeKey writes a new node key; a variable so that a test can make it fail.
var saveNodeKey = key.NodeKey.SaveAs

// initHome validates cfg, writes it to home's config.toml (refusing to replace
// an existing one unless force, and one larger than 16 MiB even then: it reads the file it
// replaces, for a restore) and loads or generates the node key. It logs
// what it did to w and returns the node ID.
//
// It either completes or leaves the home as it found it: an existing node key
// that cannot be read (RELIABILITY R-05: never silently replaced) is reported
// before anything is written; if writing config.toml or the new key fails,
// config.toml is removed (or its old content restored), a new key file that
// was renamed into place before its directory fsync failed is removed, and the
// directories initHome created are removed again.
func initHome(w io.Writer, home string, cfg config.Config, force bool) (key.ID, error) {
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("initialize %s: %w", home, err)
	}
	cfgPath := config.ConfigFile(home)
	_, err := os.Stat(cfgPath)
	cfgExisted := err == nil
	switch {
	case cfgExisted && !force:
		return "", fmt.Errorf("%s: %w", cfgPath, errConfigExists)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", cfgPath, err)
	}
	var oldCfg []byte // kept for a restore
	if cfgExisted {
		if oldCfg, err = config.ReadFile(cfgPath); err != nil { // bounded: it may be a link to a device
			return "", fmt.Errorf("read %s: %w; remove it by hand to write a new one", cfgPath, err)
		}
	}
	keyPath := config.NodeKeyFile(home)
	nk, err := key.LoadNodeKey(keyPath)
	newKey := errors.Is(err, fs.ErrNotExist)
	switch {
	case newKey:
		if nk, err = key.GenNodeKey(nil); err != nil {
			return "", err
		}
	case err != nil:
		return "", fmt.Errorf("existing node key cannot be used (nothing was written; move the file away to get a new node ID): %w", err)
	}

	created, err := mkdirAllTracked(filepath.Dir(cfgPath), 0o700)
	undoDirs := func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = os.Remove(created[i]) // only empty directories go
		}
	}
	if err != nil {
		undoDirs()
		return "", fmt.Errorf("initialize %s: %w", home, err)
	}
	undoCfg := func() {
		if cfgExisted {
			_ = atomicfile.WriteFile(cfgPath, oldCfg, config.FileMode)
		} else {
			_ = os.Remove(cfgPath)
		}
	}
	if err := config.WriteConfigFile(cfgPath, cfg); err != nil {
		if errors.Is(err, atomicfile.ErrDirNotSynced) { // the new file is in place
			undoCfg()
		}
		undoDirs()
		return "", err
	}
	if newKey {
		if err := saveNodeKey(nk, keyPath); err != nil {
			if errors.Is(err, atomicfile.ErrDirNotSynced) { // the new key is in place
				_ = os.Remove(keyPath)
			}
			undoCfg()
			undoDirs()
			return "", fmt.Errorf("initialize %s (nothing was kept): %w", home, err)
		}
	}
	fmt.Fprintf(w, "Wrote config file %s\n", cfgPath)
	if newKey {
		fmt.Fprintf(w, "Generated node key %s\n", keyPath)
	} else {
		fmt.Fprintf(w, "Found node key %s\n", keyPath)
	}
	return nk.ID(), nil
}

// mkdirAllTracked is os.MkdirAll that returns the directories it created, outermost first.
func mkdirAllTracked(dir string, perm fs.FileMode) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if parent := filepath.Dir(d); parent == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], perm)
		switch {
		case err == nil:
			created = append(created, missing[i])
		case !errors.Is(err, fs.ErrExist):
			return created, err
		}
	}
	return created, nil
}
