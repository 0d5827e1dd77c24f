// Command greenboost-hook is the OCI hook that sets and releases a
// container's GreenBoost budgets: greenboost-hook [--config PATH] [--profile NAME] prestart|poststop
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

const usage = `Usage: greenboost-hook [--config PATH] [--profile NAME] prestart|poststop

OCI hook of the GreenBoost Container Toolkit. Reads the OCI state on stdin.
  prestart   set the container's RAM/NVMe budgets in the greenboost module and record them
  poststop   release the budgets and pools of the container and drop its record

Options:
`

func main() {
	flags := flag.NewFlagSet("greenboost-hook", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), usage)
		flags.PrintDefaults()
	}
	cfgPath := flags.String("config", config.PathFromEnv(), "config file (env GREENBOOST_CONFIG)")
	profile := flags.String("profile", "", "CDI device profile whose limits apply (default: the config's [limits])")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println(version.String("greenboost-hook"))
		return
	}
	if flags.NArg() != 1 {
		flags.Usage()
		os.Exit(2)
	}
	if err := run(*cfgPath, *profile, hook.Stage(flags.Arg(0))); err != nil {
		fmt.Fprintf(os.Stderr, "greenboost-hook %s: %v\n", flags.Arg(0), err)
		os.Exit(1)
	}
}

func run(cfgPath, profile string, stage hook.Stage) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	return hook.New(cfg, profile, os.Stderr).Run(stage, os.Stdin)
}
