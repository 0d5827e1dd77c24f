// Command greenboost-hook is the OCI hook that sets and releases a
// container's GreenBoost budgets: greenboost-hook [--config PATH] [--profile NAME] [--spec FILE] prestart|poststop
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/logfile"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

const usage = `Usage: greenboost-hook [--config PATH] [--profile NAME] [--spec FILE] prestart|poststop
       greenboost-hook --version

OCI hook of the GreenBoost Container Toolkit. Reads the OCI state on stdin.
  prestart   set the container's RAM/NVMe budgets in the greenboost module and record them,
             also for a container that opted out (greenboost.io/disable, GREENBOOST_DISABLE):
             the hook runs for one only on the CDI path, where the engine gave it the device
             anyway; the log file ([runtime] log-file) notes the ignored opt-out
  poststop   release the budgets and pools of the container and drop its record

Options (one dash or two):
`

func main() {
	flags := flag.NewFlagSet("greenboost-hook", flag.ContinueOnError)
	// The flag package would print its error and the whole usage on stderr,
	// which engines show: usageError says it in one line instead.
	flags.SetOutput(io.Discard)
	cfgPath := flags.String("config", config.PathFromEnv(), "config file (env GREENBOOST_CONFIG)")
	profile := flags.String("profile", "", "CDI device profile whose limits apply (default: the config's [limits])")
	specPath := flags.String("spec", "", "the container's spec file (default: BUNDLE/config.json; greenboost-runtime sets it for crun's --config FILE)")
	showVersion := flags.Bool("version", false, "print the version and exit")
	flags.BoolVar(showVersion, "v", false, "print the version and exit (as the other binaries)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			flags.SetOutput(os.Stdout)
			flags.PrintDefaults()
			return
		}
		usageError(flagError(err))
	}
	if *showVersion {
		fmt.Println(version.String("greenboost-hook"))
		return
	}
	if flags.NArg() != 1 {
		got := "none"
		if flags.NArg() > 1 {
			got = fmt.Sprintf("%q", strings.Join(flags.Args(), " "))
		}
		usageError(fmt.Sprintf("expected one stage, prestart or poststop, got %s", got))
	}
	stage := hook.Stage(flags.Arg(0))
	if stage != hook.Prestart && stage != hook.Poststop {
		usageError(fmt.Sprintf("unknown stage %q: expected prestart or poststop", stage))
	}

	cfg, err := config.Load(*cfgPath)
	logCfg := cfg
	if err != nil {
		logCfg = config.Default() // the config's own log settings did not load
	}
	logger := logfile.New(logCfg.Runtime.LogFile, logCfg.Runtime.LogLevel)
	if err == nil {
		// A hook that succeeds is silent to the user: runc and crun drop its
		// stderr then, so warnings also go to the log.
		h := hook.New(cfg, *profile, io.MultiWriter(os.Stderr, warnLog{logger}))
		h.SpecPath = *specPath
		h.Info = func(msg string) {
			logger.Info(fmt.Sprintf("greenboost-hook %s: %s", stage, msg))
		}
		err = h.Run(stage, os.Stdin)
	}
	if err != nil {
		msg := fmt.Sprintf("greenboost-hook %s: %v", stage, err)
		fmt.Fprintln(os.Stderr, msg)
		logger.Error(msg)
		os.Exit(1)
	}
}

// usageError reports a wrong command line in one line on stderr, as
// greenboost-ctk does, and exits 1.
func usageError(problem string) {
	fmt.Fprintf(os.Stderr, "greenboost-hook: %s; see greenboost-hook --help\n", problem)
	os.Exit(1)
}

// flagError rewrites the flag package's parse errors as users type flags:
// "flag provided but not defined: -bogus" becomes "unknown flag --bogus".
func flagError(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown flag " + flagName(name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return flagName(name) + " needs a value"
	}
	// "invalid boolean value "x" for -version: parse error"
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if value, name, ok := strings.Cut(rest, " for "); ok {
			name, _, _ = strings.Cut(name, ":")
			return fmt.Sprintf("%s %s: expected true or false", flagName(name), value)
		}
	}
	return msg
}

// flagName writes a flag with two dashes, as the usage does.
func flagName(name string) string {
	return "--" + strings.TrimLeft(name, "-")
}

// warnLog logs each write (one warning) as a line of the log.
type warnLog struct{ logger *slog.Logger }

func (w warnLog) Write(p []byte) (int, error) {
	w.logger.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
