// Package cdicmd is `greenboost-ctk cdi generate|list|validate`.
package cdicmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/greenboost/greenboost-container-toolkit/cdi"
	"github.com/greenboost/greenboost-container-toolkit/hook"
	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
	"github.com/greenboost/greenboost-container-toolkit/internal/config"
)

// New returns the cdi command group.
func New() *cli.Command {
	gen := &generateCommand{}
	list := &listCommand{}
	return &cli.Command{
		Name:  "cdi",
		Usage: "generate, list and validate the CDI spec of kind " + cdi.Kind,
		Subcommands: []*cli.Command{
			{
				Name:  "generate",
				Usage: "write the CDI spec (device ext plus one per [limits.profiles.NAME])",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: cdi.DefaultSpecPath, Usage: "spec file, or - for stdout", Destination: &gen.output, EnvVars: []string{outputEnv}},
					&cli.StringFlag{Name: "format", Value: "", Usage: "yaml or json (default: from the output's extension, else yaml)", Destination: &gen.format},
				},
				Before: gen.validate,
				Action: gen.run,
			},
			{
				Name:  "list",
				Usage: "list the CDI devices the CDI library finds in the spec dirs, with its errors",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "spec-dir", Value: cli.NewStringSlice(cdiapi.DefaultSpecDirs...), Usage: "CDI spec directories", EnvVars: []string{"GREENBOOST_CDI_SPEC_DIRS"}},
					&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts", Destination: &list.json},
				},
				Action: list.run,
			},
			{
				Name:      "validate",
				Usage:     "check a spec with the CDI library, against the live device (stale major:minor fails) and against the config its hooks read (FILE: default $" + outputEnv + ", else " + cdi.DefaultSpecPath + ")",
				ArgsUsage: "[FILE]",
				Before: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return fmt.Errorf("takes at most one FILE, got %d", c.NArg())
					}
					return nil
				},
				Action: validate,
			},
		},
	}
}

type generateCommand struct {
	output string
	format string
	// target is the file written: output, or where its symlinks lead.
	target string
}

func (g *generateCommand) validate(*cli.Context) error {
	if g.output == "" {
		return fmt.Errorf("--output is empty: give a spec file, such as %s, or - for stdout, or leave the flag out for the former", cdi.DefaultSpecPath)
	}
	if g.output != "-" {
		if err := g.checkOutput(); err != nil {
			return err
		}
	}
	if g.format == "" {
		g.format = "yaml"
		if len(g.output) > 5 && g.output[len(g.output)-5:] == ".json" {
			g.format = "json"
		}
	}
	if g.format != "yaml" && g.format != "json" {
		return fmt.Errorf("--format %q: expected yaml or json", g.format)
	}
	return nil
}

// checkOutput refuses an --output engines would never load or that names a
// directory, and sets target: a symlink is written through, as `runtime
// configure` does, so that the link stays and its file gets the new spec.
func (g *generateCommand) checkOutput() error {
	target, err := atomicfile.FollowLinks(g.output)
	if err != nil {
		return fmt.Errorf("--output %s: %w", g.output, err)
	}
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		return fmt.Errorf("--output %s: is a directory; name the spec file, such as %s", g.output, filepath.Join(g.output, filepath.Base(cdi.DefaultSpecPath)))
	}
	// The name engines see in the spec dir is the one given, not the
	// link's target.
	if err := cdi.CheckFileName(g.output); err != nil {
		return fmt.Errorf("--output %w", err)
	}
	g.target = target
	return nil
}

func (g *generateCommand) run(c *cli.Context) error {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return err
	}
	// A spec must carry the live device numbers: make the device exist.
	if err := hook.LoadModule(cfg); err != nil {
		return fmt.Errorf("loading the GreenBoost module: %w", err)
	}
	spec, err := cdi.Spec(cfg)
	if err != nil {
		return err
	}
	// The spec is written all the same, as it would be before the package
	// installs the hook: engines fail such a container's start ("fork/exec"),
	// so none runs without its budget.
	if err := cdi.CheckHook(cfg.Hook.Path); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "greenboost-ctk: warning: %v in %s; containers given this spec fail to start until it is there\n", err, cfg.Path)
	}
	data, err := cdi.Encode(spec, g.format)
	if err != nil {
		return err
	}
	if g.output == "-" {
		_, err := c.App.Writer.Write(data)
		return err
	}
	if err := cdi.WriteSpec(g.target, data); err != nil {
		return err
	}
	written := g.output
	if g.target != g.output {
		written += " -> " + g.target
	}
	fmt.Fprintf(c.App.ErrWriter, "wrote CDI spec %s (cdiVersion %s, devices:", written, spec.Version)
	for _, d := range spec.Devices {
		fmt.Fprintf(c.App.ErrWriter, " %s=%s", cdi.Kind, d.Name)
	}
	fmt.Fprintln(c.App.ErrWriter, ")")
	return nil
}

type listCommand struct {
	json bool
}

func (l *listCommand) run(c *cli.Context) error {
	dirs := c.StringSlice("spec-dir")
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(dirs...), cdiapi.WithAutoRefresh(false))
	if err != nil && cache == nil {
		return fmt.Errorf("reading CDI specs: %w", err)
	}
	devices := cache.ListDevices()
	problems := map[string][]string{}
	for path, errs := range cache.GetErrors() {
		for _, e := range errs {
			problems[path] = append(problems[path], e.Error())
		}
	}
	if l.json {
		if err := json.NewEncoder(c.App.Writer).Encode(struct {
			Devices []string            `json:"devices"`
			Errors  map[string][]string `json:"errors"`
		}{append([]string{}, devices...), problems}); err != nil {
			return err
		}
	} else {
		for _, d := range devices {
			fmt.Fprintln(c.App.Writer, d)
		}
		paths := make([]string, 0, len(problems))
		for p := range problems {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			for _, e := range problems[p] {
				fmt.Fprintf(c.App.ErrWriter, "error: %s: %s\n", p, e)
			}
		}
	}
	if !slices.ContainsFunc(devices, func(d string) bool { return strings.HasPrefix(d, cdi.Kind+"=") }) {
		// A spec that is there but broken (or two that conflict) needs
		// fixing, not a new one beside it.
		fix := generateHint(dirs)
		if len(problems) > 0 {
			fix = "fix or remove the spec files named above (of two that conflict, keep one)"
		}
		fmt.Fprintf(c.App.ErrWriter, "greenboost-ctk: no %s devices in %s: %s\n", cdi.Kind, strings.Join(dirs, ", "), fix)
	}
	if len(problems) > 0 {
		return cli.Exit("", 1) // named above, on stderr or in the JSON
	}
	return nil
}

// generateHint is the fix when list finds no GreenBoost device: generate's
// default output when it lies in a searched dir, else an --output that does.
func generateHint(dirs []string) string {
	if len(dirs) == 0 || slices.Contains(dirs, filepath.Dir(cdi.DefaultSpecPath)) {
		return "run greenboost-ctk cdi generate"
	}
	return "run greenboost-ctk cdi generate --output " + filepath.Join(dirs[0], filepath.Base(cdi.DefaultSpecPath))
}

// outputEnv sets generate's --output, and so the file validate checks by
// default.
const outputEnv = "GREENBOOST_CDI_OUTPUT"

func validate(c *cli.Context) error {
	path := cdi.DefaultSpecPath
	if out := os.Getenv(outputEnv); out != "" && out != "-" {
		path = out
	}
	if c.NArg() == 1 {
		path = c.Args().First()
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: give a spec file (`greenboost-ctk cdi list --spec-dir %s` checks a whole directory)", path, path)
	}
	spec, err := cdi.Validate(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: valid, cdiVersion %s, %d device(s), device numbers match the live node, devices match the config its hooks read\n", path, spec.Version, len(spec.Devices))
	return nil
}
