package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
)

func newUnsafeResetAllCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "unsafe-reset-all",
		Aliases: []string{"unsafe_reset_all"},
		Short:   "(unsafe) Remove the address book; keep the node key and config",
		Long: `Remove the node's address book (p2p.addr_book_file, default
HOME/config/addrbook.json) and the temporary files an interrupted save left next
to it, as CometBFT's unsafe-reset-all does. The node key (the node's identity)
and config.toml are kept. It takes the home lock, so it fails at once while a
node runs on the home, and it refuses a directory that holds neither config.toml
nor a node key (a mistyped --home) instead of creating it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			cfg := config.DefaultConfig()
			haveConfig := true
			if c, err := config.Load(config.ConfigFile(home)); err == nil {
				cfg = c
			} else if errors.Is(err, fs.ErrNotExist) {
				haveConfig = false
			} else {
				return err
			}
			_, keyErr := os.Stat(config.NodeKeyFile(home))
			haveKey := keyErr == nil
			if !haveConfig && !haveKey {
				// A mistyped --home: say so instead of creating it and reporting a reset.
				return fmt.Errorf("%s holds neither %s nor %s: not a node home, nothing reset (check --home)",
					home, config.ConfigFile(home), config.NodeKeyFile(home))
			}
			if err := cfg.CheckAddrBookPath(home); err != nil {
				// The "address book" is the node key or config.toml: removing it would lose it.
				return fmt.Errorf("%w; nothing reset (fix p2p.addr_book_file in %s)", err, config.ConfigFile(home))
			}
			if book := cfg.AddrBookPath(home); bookIsLockFile(home, book) {
				// Removing it would drop the lock this command is about to hold, and report the
				// lock file as the address book; start refuses this path too.
				return fmt.Errorf("p2p.addr_book_file %s is the home's lock file; nothing reset (fix p2p.addr_book_file in %s)",
					book, config.ConfigFile(home))
			}
			lock, err := lockHome(home)
			if err != nil {
				return err
			}
			defer func() { _ = lock.Release() }()
			out := cmd.OutOrStdout()
			book := cfg.AddrBookPath(home)
			switch err := os.Remove(book); {
			case err == nil:
				fmt.Fprintf(out, "Removed address book %s\n", book)
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintf(out, "No address book at %s\n", book)
			default:
				return fmt.Errorf("remove address book: %w", err)
			}
			removed, err := atomicfile.RemoveTemps(book)
			for _, p := range removed {
				fmt.Fprintf(out, "Removed %s\n", p)
			}
			if err != nil {
				return fmt.Errorf("remove address book temporary files: %w", err)
			}
			if haveKey {
				fmt.Fprintf(out, "Kept node key %s\n", config.NodeKeyFile(home))
			}
			return nil
		},
	}
}
