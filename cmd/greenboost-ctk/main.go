// Command greenboost-ctk is the admin CLI of the GreenBoost Container Toolkit.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/cdicmd"
	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/configcmd"
	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/runtimecmd"
	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/statuscmd"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "greenboost-ctk: %v\n", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	cli.VersionPrinter = func(*cli.Context) { fmt.Println(version.String("greenboost-ctk")) }
	ourVersion, _ := version.Get()
	app := &cli.App{
		Name:    "greenboost-ctk",
		Usage:   "manage the GreenBoost Container Toolkit",
		Version: ourVersion,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "config",
				Usage:   "config file",
				Value:   config.DefaultPath,
				EnvVars: []string{config.PathEnv},
			},
		},
		Commands: []*cli.Command{
			cdicmd.New(),
			configcmd.New(),
			runtimecmd.New(),
			statuscmd.NewGC(),
			statuscmd.NewStatus(),
		},
	}
	refuseArguments(app.Commands)
	return app
}

// refuseArguments makes each command that takes no arguments fail on one:
// urfave/cli stops reading flags at the first argument, so `runtime
// configure containerd --config FILE` would otherwise drop every flag after
// the word and configure dockerd's default file.
func refuseArguments(cmds []*cli.Command) {
	for _, cmd := range cmds {
		refuseArguments(cmd.Subcommands)
		if cmd.Action == nil || cmd.ArgsUsage != "" {
			continue
		}
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("%s takes no arguments, got %q (flags go before any word; see --help)", c.Command.FullName(), c.Args().First())
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}
