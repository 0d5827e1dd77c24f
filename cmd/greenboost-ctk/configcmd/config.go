// Package configcmd is `greenboost-ctk config`.
package configcmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

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
				Action: func(c *cli.Context) error {
					return printConfig(c.App.Writer, config.Default())
				},
			},
			{
				Name:  "show",
				Usage: "print the effective configuration (file over defaults), after validating it; its first line names the file",
				Action: func(c *cli.Context) error {
					cfg, err := config.Load(c.String("config"))
					if err != nil {
						return err
					}
					// A mistyped GREENBOOST_CONFIG or --config yields the
					// defaults: say so, as a TOML comment.
					fmt.Fprintln(c.App.Writer, sourceComment(cfg.Path))
					return printConfig(c.App.Writer, cfg)
				},
			},
		},
	}
}

// sourceComment is the TOML comment line that says which file config show
// read: "# /etc/greenboost/config.toml over the defaults", or
// "# /x/config.toml does not exist: the defaults".
func sourceComment(path string) string {
	shown := path
	if strings.ContainsFunc(path, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		shown = strconv.Quote(path) // a newline would end the comment
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "# " + shown + " does not exist: the defaults"
	}
	return "# " + shown + " over the defaults"
}

func printConfig(w io.Writer, cfg *config.Config) error {
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
