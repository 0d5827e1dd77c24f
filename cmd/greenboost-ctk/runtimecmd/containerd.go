package runtimecmd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

const (
	// DefaultContainerdConfig is containerd's config file.
	DefaultContainerdConfig = "/etc/containerd/config.toml"
	// shimRuntimeType makes containerd run containerd-shim-greenboost-v2.
	shimRuntimeType = "io.containerd.greenboost.v2"
	// runcRuntimeType is containerd's own runc shim, CRI's default runtime.
	runcRuntimeType = "io.containerd.runc.v2"
	// annotationPattern matches the annotations a container asks with. CRI
	// passes a pod's (or a container's) annotations into the OCI spec only
	// where the runtime entry's pod_annotations (container_annotations) match.
	annotationPattern = "greenboost.io/*"
)

// criRuntimePlugin is the plugin that holds CRI's runtimes, per config
// version: 2 for containerd 1.x, 3 for containerd 2.0 to 2.2, 4 (what
// `containerd config default` writes since 2.3; it moved the server
// settings, not CRI's) for later 2.x.
var criRuntimePlugin = map[int64]string{
	2: "io.containerd.grpc.v1.cri",
	3: "io.containerd.cri.v1.runtime",
	4: "io.containerd.cri.v1.runtime",
}

// AddContainerdRuntime returns containerd's config.toml (empty: none yet, written
// as version 2) with CRI runtime name running the GreenBoost shim and passing
// greenboost.io/* pod and container annotations through, and with it as
// default_runtime_name if setDefault. Every other key is kept, as are other keys
// of an existing entry of that name (options such as ConfigPath); comments are
// not (the caller keeps a backup). When the file has no entry for CRI's default
// runtime runc, one is added: a runtimes table in the file replaces containerd's
// built-in one, and CRI fails to load without its default runtime.
func AddContainerdRuntime(configTOML []byte, name string, setDefault bool) ([]byte, error) {
	top := map[string]any{}
	if err := toml.Unmarshal(configTOML, &top); err != nil {
		return nil, fmt.Errorf("not TOML, left untouched: %w", err)
	}
	version := int64(2)
	if len(top) == 0 {
		top["version"] = version
	} else {
		v, ok := top["version"].(int64)
		if !ok {
			return nil, errors.New(`no "version" key (a version 1 config), left untouched: convert it to version = 2, as containerd's docs/PLUGINS.md shows`)
		}
		version = v
	}
	plugin, ok := criRuntimePlugin[version]
	if !ok {
		return nil, fmt.Errorf("config version %d, left untouched: want version 2 (containerd 1.x), 3 or 4 (containerd 2.x)", version)
	}
	criPath := []string{"plugins", plugin, "containerd"}
	cri, err := subTable(top, criPath...)
	if err != nil {
		return nil, err
	}
	runtimes, err := subTable(top, append(criPath, "runtimes")...)
	if err != nil {
		return nil, err
	}
	if _, ok := runtimes["runc"]; !ok && defaultRuntime(cri) == "runc" {
		runtimes["runc"] = map[string]any{"runtime_type": runcRuntimeType}
	}
	entry, err := subTable(top, append(criPath, "runtimes", name)...)
	if err != nil {
		return nil, err
	}
	entry["runtime_type"] = shimRuntimeType
	for _, key := range []string{"pod_annotations", "container_annotations"} {
		if err := addPattern(entry, key, annotationPattern); err != nil {
			return nil, fmt.Errorf("%s: %w", tomlPath(append(criPath, "runtimes", name, key)), err)
		}
	}
	if setDefault {
		cri["default_runtime_name"] = name
	}
	return toml.Marshal(top)
}

// shadowingImport returns the file that containerd's config (at path, its
// content configTOML) imports and that defines the CRI plugin section the
// runtime entry goes into, with that plugin; "" when there is none. containerd
// merges each import over the config, and a plugin's section from an import
// replaces the config's whole, runtime name's entry included. Imports are
// found as containerd finds them: in order, then each file's own imports
// (breadth first), a relative path against the directory of the file that
// imports it, a path with * as a glob. Of the files that define the section
// the last one wins; it is returned unless it has the entry itself. Files
// that are missing or not TOML are skipped.
func shadowingImport(path string, configTOML []byte, name string) (imported, plugin string) {
	var main struct {
		Version int64    `toml:"version"`
		Imports []string `toml:"imports"`
	}
	if err := toml.Unmarshal(configTOML, &main); err != nil || len(main.Imports) == 0 {
		return "", ""
	}
	loaded := map[string]bool{path: true}
	pending := resolveImports(path, main.Imports)
	for len(pending) > 0 {
		file := pending[0]
		pending = pending[1:]
		if loaded[file] {
			continue
		}
		loaded[file] = true
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		top := map[string]any{}
		if err := toml.Unmarshal(data, &top); err != nil {
			continue
		}
		if p := criSection(top, main.Version); p != "" {
			imported, plugin = file, p
			if entry, _ := lookup(top, "plugins", p, "containerd", "runtimes", name).(map[string]any); entry["runtime_type"] == shimRuntimeType {
				imported, plugin = "", ""
			}
		}
		if list, ok := top["imports"].([]any); ok {
			var more []string
			for _, v := range list {
				if s, ok := v.(string); ok {
					more = append(more, s)
				}
			}
			pending = append(pending, resolveImports(file, more)...)
		}
	}
	return imported, plugin
}

// hasVersion reports whether the containerd config at path has a version key.
func hasVersion(path string) bool {
	var config struct {
		Version *int64 `toml:"version"`
	}
	data, err := os.ReadFile(path)
	return err == nil && toml.Unmarshal(data, &config) == nil && config.Version != nil
}

// criSection returns the plugin of an imported file's top that becomes the
// section holding CRI's runtimes under a config of mainVersion, "" if none:
// that of the main version, or for containerd 2.x the version 2 one of an
// import of an older version, which containerd migrates to it.
func criSection(top map[string]any, mainVersion int64) string {
	plugins, _ := top["plugins"].(map[string]any)
	if plugins == nil {
		return ""
	}
	want := criRuntimePlugin[mainVersion]
	if _, ok := plugins[want]; ok && want != "" {
		return want
	}
	version, _ := top["version"].(int64)
	if old := criRuntimePlugin[2]; mainVersion > 2 && version < 3 {
		if _, ok := plugins[old]; ok {
			return old
		}
	}
	return ""
}

// resolveImports spells a config's imports as containerd does: cleaned,
// relative to the directory of the config (parent), globbed when they have
// a *.
func resolveImports(parent string, imports []string) []string {
	var out []string
	for _, imp := range imports {
		imp = filepath.Clean(imp)
		if !filepath.IsAbs(imp) {
			imp = filepath.Join(filepath.Dir(parent), imp)
		}
		if strings.Contains(imp, "*") {
			matches, _ := filepath.Glob(imp)
			out = append(out, matches...)
		} else {
			out = append(out, imp)
		}
	}
	return out
}

// lookup returns the value at keys under t, nil where a table is missing.
func lookup(t map[string]any, keys ...string) any {
	var v any = t
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// addPattern adds pattern to the list at t[key] unless it is there.
func addPattern(t map[string]any, key, pattern string) error {
	var list []any
	switch v := t[key].(type) {
	case nil:
	case []any:
		list = v
	default:
		return errors.New("not a list, left untouched")
	}
	for _, p := range list {
		if p == pattern {
			return nil
		}
	}
	t[key] = append(list, pattern)
	return nil
}

// defaultRuntime is CRI's default_runtime_name, runc when unset.
func defaultRuntime(cri map[string]any) string {
	if name, ok := cri["default_runtime_name"].(string); ok && name != "" {
		return name
	}
	return "runc"
}

// subTable walks (creating what is missing) the tables at keys under t.
func subTable(t map[string]any, keys ...string) (map[string]any, error) {
	for i, k := range keys {
		switch v := t[k].(type) {
		case nil:
			next := map[string]any{}
			t[k] = next
			t = next
		case map[string]any:
			t = v
		default:
			return nil, fmt.Errorf("%s is not a table, left untouched", tomlPath(keys[:i+1]))
		}
	}
	return t, nil
}

// tomlPath spells keys as a dotted TOML key, quoting keys that have dots.
func tomlPath(keys []string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = k
		if strings.Contains(k, ".") {
			quoted[i] = strconv.Quote(k)
		}
	}
	return strings.Join(quoted, ".")
}
