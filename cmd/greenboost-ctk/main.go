// Command greenboost-ctk is the admin CLI of the GreenBoost Container Toolkit.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/cdicmd"
	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/configcmd"
	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/runtimecmd"
	"github.com/greenboost/greenboost-container-toolkit/cmd/greenboost-ctk/statuscmd"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
	"github.com/greenboost/greenboost-container-toolkit/internal/version"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the CLI and returns the exit status: 0, the code of a cli.Exit
// error (a command that has already said what failed, or nothing at all),
// else 1 after one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	err := app.Run(args)
	if err == nil {
		return 0
	}
	code := 1
	var exit cli.ExitCoder
	if errors.As(err, &exit) && exit.ExitCode() != 0 {
		code = exit.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "greenboost-ctk: %s\n", msg)
	}
	return code
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
		Action:       unknownCommand(cli.ShowAppHelp),
		OnUsageError: usageError,
		// Errors come back to run, which prints them and picks the exit
		// status; urfave/cli would otherwise exit on a cli.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	refuseArguments(app.Commands)
	setupCommands(app.Commands)
	// urfave/cli adds --help to the app only with its own help command.
	app.Commands = append(app.Commands, helpCommand(cli.ShowAppHelp))
	app.Flags = append(app.Flags, cli.HelpFlag)
	return app
}

// refuseArguments makes each command that takes no arguments fail on one:
// urfave/cli stops reading flags at the first argument, so `runtime
// configure containerd --config FILE` would otherwise drop every flag after
// the word and configure dockerd's default file.
func refuseArguments(cmds []*cli.Command) {
	for _, cmd := range cmds {
		refuseArguments(cmd.Subcommands)
		if cmd.Action == nil || cmd.ArgsUsage != "" || len(cmd.Subcommands) > 0 {
			continue
		}
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("takes no arguments, got %q (flags go before any word)", c.Args().First())
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}

// setupCommands gives every command the one usage-error handler, a Before
// whose errors (usage errors: validation sits there) name the command and
// its --help, and each group (a command with subcommands) the action that
// refuses an unknown subcommand and a help command that refuses an unknown
// topic: urfave/cli's own print only "No help topic for 'x'" and exit 3.
func setupCommands(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.OnUsageError = usageError
		if before := cmd.Before; before != nil {
			cmd.Before = func(c *cli.Context) error {
				err := before(c)
				if err == nil {
					return nil
				}
				path := commandPath(c)
				return fmt.Errorf("%s: %w; see %s --help", strings.TrimPrefix(path, c.App.Name+" "), err, path)
			}
		}
		if len(cmd.Subcommands) > 0 {
			if cmd.Action == nil {
				cmd.Action = unknownCommand(cli.ShowSubcommandHelp)
			}
			setupCommands(cmd.Subcommands)
			cmd.Subcommands = append(cmd.Subcommands, helpCommand(cli.ShowSubcommandHelp))
		}
	}
}

// helpCommand stands in for urfave/cli's help command of the app or of a
// group (showHelp shows that one's help): `help` and `help COMMAND` print
// the help as urfave/cli's does, `help bogus` is the usage error of an
// unknown command.
func helpCommand(showHelp cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:         "help",
		Aliases:      []string{"h"},
		Usage:        "Shows a list of commands or help for one command",
		ArgsUsage:    "[command]",
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			parent := c.Lineage()[1] // the app or the group
			topic := c.Args().First()
			if topic == "" {
				return showHelp(parent)
			}
			if parent.Command.Command(topic) == nil {
				return unknownCommandError(parent, topic)
			}
			return cli.ShowCommandHelp(parent, topic)
		},
	}
}

// unknownCommand is the action of the app and of each command group: with no
// word it shows the help as urfave/cli did, with one it names the unknown
// command.
func unknownCommand(showHelp cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if !c.Args().Present() {
			return showHelp(c)
		}
		return unknownCommandError(c, c.Args().First())
	}
}

// unknownCommandError names word as an unknown command of the app or group
// of c, and the --help to read.
func unknownCommandError(c *cli.Context, word string) error {
	path := commandPath(c)
	words := strings.TrimPrefix(strings.TrimPrefix(path, c.App.Name), " ")
	if words != "" {
		words += " "
	}
	return fmt.Errorf("unknown command %q; see %s --help", words+word, path)
}

// usageError turns urfave/cli's flag parse errors (printed with the whole
// help after them by default) into one line naming the flag, what is wrong
// and the fix.
func usageError(c *cli.Context, err error, _ bool) error {
	path := commandPath(c)
	where := strings.TrimPrefix(strings.TrimPrefix(path, c.App.Name), " ")
	if where != "" {
		where += ": "
	}
	see := "see " + path + " --help"
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		if where != "" && isAppFlag(c, name) {
			return fmt.Errorf("%s%s is a global flag: put it before the command, as in %s %s VALUE %s", where, flagName(name), c.App.Name, flagName(name), strings.TrimSuffix(where, ": "))
		}
		return fmt.Errorf("%sunknown flag %s; %s", where, flagName(name), see)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		hint := ""
		if form := expectedForm(c, name); form != "" {
			hint = " (" + form + ")"
		}
		return fmt.Errorf("%s%s needs a value%s; %s", where, flagName(name), hint, see)
	}
	// "invalid value "abc" for flag -timeout: parse error" and, for a bool,
	// "invalid boolean value "x" for -json: parse error".
	if rest, ok := strings.CutPrefix(msg, "invalid "); ok {
		if _, rest, ok := strings.Cut(rest, "value "); ok {
			if value, rest, ok := strings.Cut(rest, " for "); ok {
				name, _, _ := strings.Cut(strings.TrimPrefix(rest, "flag "), ":")
				form := expectedForm(c, name)
				if form == "" {
					form = "not a valid value"
				}
				return fmt.Errorf("%s%s %s: %s; %s", where, flagName(name), value, form, see)
			}
		}
	}
	return fmt.Errorf("%s%s; %s", where, msg, see)
}

// flagName writes a flag as users type it: -o, --timeout.
// isAppFlag reports whether name (as the parser gives it, with dashes) is
// one of the app's own flags, which go before any command.
func isAppFlag(c *cli.Context, name string) bool {
	name = strings.TrimLeft(name, "-")
	for _, f := range c.App.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

func flagName(name string) string {
	name = strings.TrimLeft(name, "-")
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// expectedForm says what a flag's value looks like, from its type; "" when
// there is nothing useful to say.
func expectedForm(c *cli.Context, name string) string {
	name = strings.TrimLeft(name, "-")
	for _, f := range c.Command.Flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.DurationFlag:
			return "expected a duration like 30s, 2m or 1m30s"
		case *cli.BoolFlag:
			return "expected true or false"
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
			return "expected an integer"
		case *cli.Float64Flag:
			return "expected a number"
		}
	}
	return ""
}

// commandPath is the command as typed, "greenboost-ctk cdi list": urfave/cli
// v2's FullName holds only the last word.
func commandPath(c *cli.Context) string {
	var words []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" {
			words = append(words, ctx.Command.Name)
		}
	}
	slices.Reverse(words)
	if len(words) == 0 || words[0] != c.App.Name {
		words = append([]string{c.App.Name}, words...)
	}
	return strings.Join(words, " ")
}
