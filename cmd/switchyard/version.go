package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the software, build and protocol versions",
		Long: `Print the software version (NodeInfo.version), the module version, the VCS commit
and the Go toolchain the binary was built from (from its embedded build
information), and the p2p, block and app protocol versions a node advertises by
default. It reads no config: p2p.p2p_protocol and p2p.block_protocol in
config.toml replace the first two in what a node advertises.
"switchyard --version" prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refuseHome(cmd, ""); err != nil {
				return err
			}
			info, ok := debug.ReadBuildInfo()
			if !ok {
				info = nil
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText(info))
			return err
		},
	}
}

// versionText renders the version report from the binary's build information (nil when the
// binary has none):
//
//	switchyard 0.1.0
//	module github.com/switchyard-p2p/switchyard v0.1.0
//	commit 0123abcd... 2025-01-02T03:04:05Z (modified)
//	go go1.26.8 linux/amd64
//	p2p protocol 8, block protocol 11, app protocol 0 (defaults; config.toml's p2p_protocol and block_protocol override them)
//
// The module version is "(devel)" for a build from a source tree (go build, go run) and the tag
// for "go install ...@version"; the commit line says "unknown" when the build recorded no VCS
// information (go run, -buildvcs=false, a tree without .git).
func versionText(info *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "switchyard %s\n", node.Version)
	modPath, modVersion := "github.com/switchyard-p2p/switchyard", "unknown"
	goVersion := runtime.Version()
	var rev, vcsTime string
	modified := false
	if info != nil {
		if info.Main.Path != "" {
			modPath = info.Main.Path
		}
		if info.Main.Version != "" {
			modVersion = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(&b, "module %s %s\n", modPath, modVersion)
	if rev == "" {
		b.WriteString("commit unknown\n")
	} else {
		b.WriteString("commit " + rev)
		if vcsTime != "" {
			b.WriteString(" " + vcsTime)
		}
		if modified {
			b.WriteString(" (modified)")
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "go %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	pv := nodeinfo.DefaultProtocolVersion
	fmt.Fprintf(&b, "p2p protocol %d, block protocol %d, app protocol %d (defaults; config.toml's p2p_protocol and block_protocol override them)\n",
		pv.P2P, pv.Block, pv.App)
	return b.String()
}
