// Command greenboost-hook is the OCI hook that sets and releases a
// container's GreenBoost budgets: greenboost-hook [--config PATH] [--profile NAME] prestart|poststop
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

const usage = `Usage: greenboost-hook [--config PATH] [--profile NAME] prestart|poststop
       greenboost-hook --version

OCI hook of the GreenBoost Container Toolkit. Reads the OCI state on stdin.
  prestart   set the container's RAM/NVMe budgets in the greenboost module and record them
  poststop   release the budgets and pools of the container and drop its record

Options (one dash or two):
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
		fmt.Fprintf(os.Stderr, "greenboost-hook: expected one stage, prestart or poststop, got %q\n\n", flags.Args())
		flags.Usage()
		os.Exit(2)
	}
	cfg, err := config.Load(*cfgPath)
	if err == nil {
		err = hook.New(cfg, *profile, os.Stderr).Run(hook.Stage(flags.Arg(0)), os.Stdin)
	}
	if err != nil {
		msg := fmt.Sprintf("greenboost-hook %s: %v", flags.Arg(0), err)
		fmt.Fprintln(os.Stderr, msg)
		logFile := config.Default().Runtime.LogFile // the config's own failed to load
		if cfg != nil {
			logFile = cfg.Runtime.LogFile
		}
		logFailure(logFile, msg)
		os.Exit(1)
	}
}

// logFailure also appends the failure to the toolkit's log file: runc shows
// a hook's stderr in its error, but crun (under Podman) drops it.
func logFailure(path, msg string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "time=%s level=error msg=%q\n", time.Now().UTC().Format(time.RFC3339Nano), msg)
}
