// Package configcmd is `greenboost-ctk config`.
package configcmd

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// New returns the config command group.
func New() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "show the configuration",
		Subcommands: []*cli.Command{
			{
				Name:  "default",
				Usage: "print the default config.toml",
				Action: func(*cli.Context) error {
					return printConfig(config.Default())
				},
			},
			{
				Name:  "show",
				Usage: "print the effective configuration (file over defaults), after validating it",
				Action: func(c *cli.Context) error {
					cfg, err := config.Load(c.String("config"))
					if err != nil {
						return err
					}
					return printConfig(cfg)
				},
			},
		},
	}
}

func printConfig(cfg *config.Config) error {
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	fmt.Print(string(data))
	return nil
}
