// Package runtimecmd is `greenboost-ctk runtime configure`: it registers
// greenboost-runtime with Docker and the GreenBoost shim with containerd's CRI.
package runtimecmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/greenboost/greenboost-container-toolkit/internal/atomicfile"
)

const (
	// DefaultDockerConfig is dockerd's config file.
	DefaultDockerConfig = "/etc/docker/daemon.json"
	// runtimeBinary is the wrapper's installed name.
	runtimeBinary = "greenboost-runtime"
	// installedRuntime is where the packages put it.
	installedRuntime = "/usr/bin/" + runtimeBinary
)

// New returns the runtime command group.
func New() *cli.Command {
	c := &configureCommand{}
	return &cli.Command{
		Name:  "runtime",
		Usage: "register GreenBoost with a container engine",
		Subcommands: []*cli.Command{{
			Name:  "configure",
			Usage: "add the GreenBoost runtime to dockerd's daemon.json or containerd's config.toml, keeping everything else in it",
			Description: "docker: a runtime entry for greenboost-runtime (docker run --runtime=greenboost).\n" +
				"containerd: a CRI runtime entry for the shim containerd-shim-greenboost-v2 (Kubernetes RuntimeClass handler greenboost).\n" +
				"The previous file is kept as FILE.bak. Podman and nerdctl ≥ 2 need no runtime: they use the CDI spec (greenboost-ctk cdi generate).",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "runtime", Value: "docker", Usage: "the engine to configure: docker or containerd", Destination: &c.engine},
				&cli.StringFlag{Name: "config", Usage: "the engine's config file (default: " + DefaultDockerConfig + ", " + DefaultContainerdConfig + ")", Destination: &c.path},
				&cli.StringFlag{Name: "runtime-name", Value: "greenboost", Usage: "the name to register (docker run --runtime=NAME, RuntimeClass handler NAME)", Destination: &c.name},
				&cli.StringFlag{Name: "runtime-path", Usage: "docker: greenboost-runtime to register (default: the one beside greenboost-ctk, else " + installedRuntime + ")", Destination: &c.runtimePath},
				&cli.BoolFlag{Name: "set-as-default", Usage: "also make it the engine's default runtime", Destination: &c.setDefault},
				&cli.BoolFlag{Name: "dry-run", Usage: "print the new config instead of writing it", Destination: &c.dryRun},
			},
			Before: c.validate,
			Action: c.run,
		}},
	}
}

type configureCommand struct {
	engine, path, name, runtimePath string
	setDefault, dryRun              bool
	// stdout takes the dry run's config and what was done (the app's
	// Writer; os.Stdout when nil), stderr the warnings (the app's
	// ErrWriter; os.Stderr when nil).
	stdout, stderr io.Writer
}

// out is where results go.
func (c *configureCommand) out() io.Writer {
	if c.stdout == nil {
		return os.Stdout
	}
	return c.stdout
}

// warn writes one line on stderr, as greenboost-ctk writes its errors.
func (c *configureCommand) warn(msg string) {
	w := c.stderr
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "greenboost-ctk: %s\n", msg)
}

func (c *configureCommand) validate(ctx *cli.Context) error {
	var err error
	switch c.engine {
	case "docker":
		if c.path, err = orDefault(ctx, "config", c.path, DefaultDockerConfig); err != nil {
			return err
		}
		if c.runtimePath, err = orDefault(ctx, "runtime-path", c.runtimePath, defaultRuntimePath()); err != nil {
			return err
		}
		if !filepath.IsAbs(c.runtimePath) {
			return fmt.Errorf("--runtime-path %q: want an absolute path (dockerd resolves relative ones against its own PATH)", c.runtimePath)
		}
	case "containerd":
		if c.path, err = orDefault(ctx, "config", c.path, DefaultContainerdConfig); err != nil {
			return err
		}
		if c.runtimePath != "" || ctx != nil && ctx.IsSet("runtime-path") {
			return errors.New("--runtime-path is for docker: containerd runs containerd-shim-greenboost-v2 from its PATH, and the shim runs the greenboost-runtime beside it")
		}
	case "podman":
		return errors.New("--runtime podman: Podman needs no runtime entry; generate the CDI spec (greenboost-ctk cdi generate) and use --device greenboost.io/vram=ext")
	default:
		return fmt.Errorf("--runtime %q: expected docker or containerd", c.engine)
	}
	if c.path == "-" {
		return errors.New("--config -: give the file to change; --dry-run prints the result instead of writing it")
	}
	if strings.HasSuffix(c.path, "/") {
		// Its directory would be made with the file's name: a daemon.json
		// directory that dockerd then refuses to start with.
		name := filepath.Base(DefaultDockerConfig)
		if c.engine == "containerd" {
			name = filepath.Base(DefaultContainerdConfig)
		}
		return fmt.Errorf("--config %s ends in /: give the file, such as %s", c.path, filepath.Join(c.path, name))
	}
	if c.name == "" {
		return errors.New("--runtime-name must not be empty")
	}
	if c.name == "runc" {
		return errors.New("--runtime-name runc: dockerd reserves that name and CRI's runc entry must stay runc's; choose another, e.g. greenboost")
	}
	return nil
}

// orDefault returns the flag's value, or def where the flag was left out. A
// flag given an empty value (a script's unset variable) is an error: it must
// not stand for the default. ctx is nil where tests set the fields.
func orDefault(ctx *cli.Context, flag, value, def string) (string, error) {
	switch {
	case value != "":
		return value, nil
	case ctx != nil && ctx.IsSet(flag):
		return "", fmt.Errorf("--%s is empty: give a file, or leave the flag out for %s", flag, def)
	}
	return def, nil
}

// defaultRuntimePath is greenboost-runtime beside this executable (an
// unpacked build), else where the packages install it.
func defaultRuntimePath() string {
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), runtimeBinary)
		if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() {
			return beside
		}
	}
	return installedRuntime
}

func (c *configureCommand) run(ctx *cli.Context) error {
	if ctx != nil && ctx.App != nil {
		if c.stderr == nil {
			c.stderr = ctx.App.ErrWriter
		}
		if c.stdout == nil {
			c.stdout = ctx.App.Writer
		}
	}
	// A daemon.json that links elsewhere (config management) is updated
	// there, even where the target does not exist yet: the atomic rename
	// must not replace the link. The engine reads the path it was given,
	// and resolves containerd's relative imports against it.
	given := c.path
	path, err := atomicfile.FollowLinks(c.path)
	if err != nil {
		return err
	}
	c.path = path
	if !c.dryRun {
		// Two runs on one file (a package's postinst and an admin) each
		// keep the other's entry.
		unlock, err := atomicfile.LockDir(filepath.Dir(c.path))
		if err != nil {
			return fmt.Errorf("creating and locking the directory of %s: %w", c.path, err)
		}
		defer unlock()
	}
	old, mode, err := readFile(c.path)
	if err != nil {
		return err
	}
	updated, notes, err := c.merge(old, given)
	if err != nil {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	for _, note := range notes {
		c.warn(note)
	}
	if c.dryRun {
		_, err := c.out().Write(updated)
		return err
	}
	// The merges return the file as it was when its content already has
	// the entry, whatever its formatting.
	if old != nil && bytes.Equal(old, updated) {
		fmt.Fprintf(c.out(), "%s: runtime %q is already %s; nothing changed\n", c.path, c.name, c.target())
		return nil
	}
	if old != nil {
		// The previous content stays one rename away (DESIGN §9: engine
		// configs are merged, with a backup).
		if err := atomicfile.Write(backupPath(c.path), old, mode); err != nil {
			return fmt.Errorf("backing up %s: %w", c.path, err)
		}
		fmt.Fprintf(c.out(), "%s: previous content saved as %s\n", c.path, backupPath(c.path))
	}
	if err := atomicfile.Write(c.path, updated, mode); err != nil {
		return err
	}
	fmt.Fprintf(c.out(), "%s: runtime %q is %s; restart %s to use it (systemctl restart %s)\n", c.path, c.name, c.target(), c.engine, c.engine)
	return nil
}

// merge returns the engine's config with the runtime added, and the
// warnings for stderr. given is the path the engine reads the config by.
func (c *configureCommand) merge(old []byte, given string) ([]byte, []string, error) {
	if c.engine == "containerd" {
		updated, warnings, err := AddContainerdRuntime(old, c.name, c.setDefault)
		if err != nil {
			return nil, nil, err
		}
		var notes []string
		for _, w := range warnings {
			notes = append(notes, fmt.Sprintf("warning: %s: %s", c.path, w))
		}
		if imported, plugin := shadowingImport(given, old, c.name); imported != "" {
			fix := "greenboost-ctk runtime configure --runtime containerd --config " + imported
			if c.name != "greenboost" {
				fix += " --runtime-name " + c.name
			}
			if c.setDefault {
				fix += " --set-as-default"
			}
			if !hasVersion(imported) {
				fix = "add version = 2 at its top, then " + fix // configure refuses a version-less file
			}
			notes = append(notes, fmt.Sprintf("warning: %s (imported by %s) defines plugins.%q, and containerd takes that whole section from it: "+
				"runtime %q in %s has no effect; add the runtime entry there (%s)", imported, given, plugin, c.name, given, fix))
		}
		return updated, notes, nil
	}
	updated, dropped, err := AddDockerRuntime(old, c.name, c.runtimePath, c.setDefault)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	if prev := dockerDefaultRuntime(old); c.setDefault && prev != "" && prev != c.name {
		notes = append(notes, fmt.Sprintf("%s: default-runtime was %q, now %q", c.path, prev, c.name))
	}
	if len(dropped) > 0 {
		notes = append(notes, fmt.Sprintf("%s: runtimes.%s: dropped %s (dockerd refuses them beside path)", c.path, c.name, strings.Join(dropped, ", ")))
	}
	return updated, notes, nil
}

// dockerDefaultRuntime is daemon.json's default-runtime ("" when none, or
// when AddDockerRuntime refuses the file).
func dockerDefaultRuntime(daemonJSON []byte) string {
	var cfg struct {
		DefaultRuntime string `json:"default-runtime"`
	}
	_ = json.Unmarshal(bytes.TrimPrefix(daemonJSON, []byte(utf8BOM)), &cfg)
	return cfg.DefaultRuntime
}

// target is what the runtime entry runs, for messages.
func (c *configureCommand) target() string {
	if c.engine == "containerd" {
		return "runtime_type " + shimRuntimeType
	}
	return c.runtimePath
}

// backupPath is where run keeps the content it replaced.
func backupPath(path string) string { return path + ".bak" }

// readFile returns the file's content and mode; a missing file is nil
// with mode 0644.
func readFile(path string) ([]byte, fs.FileMode, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0o644, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, fi.Mode().Perm(), nil
}

// refusedBesidePath are the runtime keys dockerd refuses in an entry with a
// path ("cannot configure both path and runtimeType", "options cannot be
// used with a path runtime"): they are for containerd shims.
var refusedBesidePath = []string{"runtimeType", "options"}

const utf8BOM = "\xef\xbb\xbf"

// AddDockerRuntime returns daemon.json (empty: none yet) with runtime name
// pointing at path, and with default-runtime name if setDefault. Every other
// key and runtime is kept as it was, as are other keys of an existing entry
// of that name (runtimeArgs), but for the keys dockerd refuses beside a path
// (runtimeType, options), which are dropped and returned. It refuses what is
// not a JSON object rather than replace it, and returns one whose content
// already has all that as it is, whatever its formatting.
func AddDockerRuntime(daemonJSON []byte, name, path string, setDefault bool) (updated []byte, dropped []string, err error) {
	top := map[string]json.RawMessage{}
	// dockerd reads a file an editor saved with a UTF-8 byte order mark.
	content := bytes.TrimPrefix(daemonJSON, []byte(utf8BOM))
	if len(bytes.TrimSpace(content)) > 0 {
		if err := json.Unmarshal(content, &top); err != nil {
			return nil, nil, fmt.Errorf("not a JSON object, left untouched: %w", err)
		}
		if top == nil {
			return nil, nil, errors.New("not a JSON object (null), left untouched")
		}
	}
	runtimes := map[string]map[string]json.RawMessage{}
	if raw, ok := top["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil {
			return nil, nil, fmt.Errorf(`"runtimes" is not an object of runtime objects, left untouched: %w`, err)
		}
		if runtimes == nil { // "runtimes": null, as if absent
			runtimes = map[string]map[string]json.RawMessage{}
		}
	}
	entry := runtimes[name]
	if entry == nil {
		entry = map[string]json.RawMessage{}
	}
	// dockerd decodes daemon.json with encoding/json, which matches keys
	// case-insensitively: "RuntimeType" is a runtimeType too, and a "Path"
	// beside ours would be a second path.
	keys := make([]string, 0, len(entry))
	for k := range entry {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, refused := range refusedBesidePath {
		for _, k := range keys {
			if strings.EqualFold(k, refused) {
				delete(entry, k)
				dropped = append(dropped, k)
			}
		}
	}
	for _, k := range keys {
		if k != "path" && strings.EqualFold(k, "path") {
			delete(entry, k)
		}
	}
	entry["path"], _ = marshalAsWritten(path, "")
	runtimes[name] = entry
	if top["runtimes"], err = marshalAsWritten(runtimes, ""); err != nil {
		return nil, nil, err
	}
	if setDefault {
		top["default-runtime"], _ = marshalAsWritten(name, "")
	}
	out, err := marshalAsWritten(top, "    ")
	if err != nil {
		return nil, nil, err
	}
	if sameJSON(content, out) {
		return daemonJSON, dropped, nil
	}
	return out, dropped, nil
}

// marshalAsWritten encodes v as JSON (indented by indent, ending in a
// newline when indented) without json.Marshal's HTML escaping, which would
// turn a user's "<" or "&" in daemon.json into \u003c and \u0026.
func marshalAsWritten(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if indent == "" {
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	}
	return b.Bytes(), nil
}

// sameJSON reports whether a and b are JSON documents with the same content
// (numbers compared as written: 1 and 1.0 differ).
func sameJSON(a, b []byte) bool {
	da, errA := decodeJSON(a)
	db, errB := decodeJSON(b)
	return errA == nil && errB == nil && reflect.DeepEqual(da, db)
}

// decodeJSON decodes one JSON document, numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}
