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
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "greenboost-ctk: %v\n", err)
		os.Exit(1)
	}
}
