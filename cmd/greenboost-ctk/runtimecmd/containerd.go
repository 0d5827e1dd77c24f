package runtimecmd

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

// criServicePlugin serves CRI's API; in a version 2 config it also holds
// CRI's runtimes.
const criServicePlugin = "io.containerd.grpc.v1.cri"

// AddContainerdRuntime returns containerd's config.toml (empty: none yet, written
// as version 2) with CRI runtime name running the GreenBoost shim and passing
// greenboost.io/* pod and container annotations through, and with it as
// default_runtime_name if setDefault; and the warnings for stderr. Every other
// key is kept, as are other keys of an existing entry of that name (options
// such as ConfigPath). When the file has no entry for CRI's default runtime
// runc, one is added: a runtimes table in the file replaces containerd's
// built-in one, and CRI fails to load without its default runtime.
//
// A config that already holds all that is returned as it is. A new entry
// (without setDefault) is appended to the file's text, which keeps its
// comments and formatting; where that does not give the same config (an
// inline table holds the runtimes), and to change tables the file has, the
// file is re-encoded from its parsed content and a warning says so.
func AddContainerdRuntime(configTOML []byte, name string, setDefault bool) (updated []byte, warnings []string, err error) {
	top, version, err := decodeContainerdConfig(configTOML)
	if err != nil {
		return nil, nil, err
	}
	fresh := len(top) == 0 // no file yet, or only comments
	if fresh {
		top["version"] = version
	}
	plugin, ok := criRuntimePlugin[version]
	if !ok {
		return nil, nil, fmt.Errorf("config version %d, left untouched: want version 2 (containerd 1.x), 3 or 4 (containerd 2.x)", version)
	}
	if disabled := disabledCRI(top, plugin); disabled != "" {
		warnings = append(warnings, fmt.Sprintf("disabled_plugins has %q: CRI is off, so Kubernetes and crictl will not use runtime %q "+
			"(ctr and nerdctl with --runtime %s still work); remove it from disabled_plugins for CRI", disabled, name, shimRuntimeType))
	}
	added, err := addRuntime(top, plugin, name, setDefault)
	if err != nil {
		return nil, nil, err
	}
	merged, err := toml.Marshal(top)
	if err != nil {
		return nil, nil, err
	}
	if sameTOML(configTOML, merged) {
		return configTOML, warnings, nil
	}
	why := "updating an existing entry or --set-as-default rewrites the file from its parsed content"
	if added != nil {
		if fresh {
			added = append([]string{fmt.Sprintf("version = %d\n", version)}, added...)
		}
		if text := appendText(configTOML, added); sameTOML(text, merged) {
			return text, warnings, nil
		}
		why = "the new tables cannot follow its text as they are (e.g. an inline table holds CRI's runtimes), so the file is rewritten from its parsed content"
	}
	if losesText(configTOML) {
		warnings = append(warnings, "comments and formatting not kept: "+why)
	}
	return merged, warnings, nil
}

// decodeContainerdConfig parses config.toml and returns it with its version:
// 2 for an empty one, which is to be written as version 2.
func decodeContainerdConfig(configTOML []byte) (map[string]any, int64, error) {
	top := map[string]any{}
	if err := toml.Unmarshal(configTOML, &top); err != nil {
		return nil, 0, fmt.Errorf("not TOML, left untouched: %w", err)
	}
	if len(top) == 0 {
		return top, 2, nil
	}
	switch v := top["version"].(type) {
	case int64:
		return top, v, nil
	case nil:
		return nil, 0, errors.New(`no "version" key (a version 1 config), left untouched: convert it to version = 2, as containerd's docs/PLUGINS.md shows`)
	case string:
		return nil, 0, fmt.Errorf("version = %q: must be an integer (e.g. version = 2), left untouched", v)
	default:
		return nil, 0, fmt.Errorf("version is %s: must be an integer (e.g. version = 2), left untouched", tomlKind(v))
	}
}

// tomlKind names the TOML type of a decoded value that is not a string or
// an integer.
func tomlKind(v any) string {
	switch v.(type) {
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// addRuntime adds runtime name's entry (and runc's, see AddContainerdRuntime)
// under plugin's CRI section of top. When the entry is new and setDefault is
// not asked, it returns the text of the tables it added, as TOML that can
// follow the file's; else nil.
func addRuntime(top map[string]any, plugin, name string, setDefault bool) ([]string, error) {
	criPath := []string{"plugins", plugin, "containerd"}
	cri, err := subTable(top, criPath...)
	if err != nil {
		return nil, err
	}
	runtimes, err := subTable(top, append(criPath, "runtimes")...)
	if err != nil {
		return nil, err
	}
	var added []string
	if _, ok := runtimes["runc"]; !ok && defaultRuntime(cri) == "runc" {
		runtimes["runc"] = map[string]any{"runtime_type": runcRuntimeType}
		added = append(added, tableText(append(criPath, "runtimes", "runc"), runtimes["runc"].(map[string]any)))
	}
	_, existed := runtimes[name]
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
	if existed || setDefault {
		return nil, nil
	}
	return append(added, tableText(append(criPath, "runtimes", name), entry)), nil
}

// disabledCRI returns the entry of the config's disabled_plugins that turns
// CRI off (its runtimes' plugin, or the service), "" when none does.
func disabledCRI(top map[string]any, plugin string) string {
	list, _ := top["disabled_plugins"].([]any)
	for _, v := range list {
		if v == plugin || v == criServicePlugin {
			return v.(string)
		}
	}
	return ""
}

// entryKeyOrder is the order tableText writes an entry's keys in (the
// README's); other keys follow, sorted.
var entryKeyOrder = []string{"runtime_type", "pod_annotations", "container_annotations"}

// tableText writes the table at keys: its header, then its string and list
// values one a line, indented.
func tableText(keys []string, table map[string]any) string {
	names := slices.SortedFunc(maps.Keys(table), func(a, b string) int {
		rank := func(k string) int {
			if i := slices.Index(entryKeyOrder, k); i >= 0 {
				return i
			}
			return len(entryKeyOrder)
		}
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	var b strings.Builder
	b.WriteString("[" + tomlPath(keys) + "]\n")
	for _, k := range names {
		fmt.Fprintf(&b, "  %s = %s\n", tomlKey(k), tomlValue(table[k]))
	}
	return b.String()
}

// tomlValue writes a string or a list of them as a TOML value; anything else
// as Go prints it, for sameTOML to refuse.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		items := make([]string, len(v))
		for i, item := range v {
			items[i] = tomlValue(item)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// appendText returns the file's text with each of tables after it, a blank
// line before each, in the file's line ending.
func appendText(configTOML []byte, tables []string) []byte {
	nl := "\n"
	if bytes.Contains(configTOML, []byte("\r\n")) {
		nl = "\r\n"
	}
	out := slices.Clone(configTOML)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, nl...)
	}
	for _, table := range tables {
		if len(bytes.TrimSpace(out)) > 0 {
			out = append(out, nl...)
		}
		out = append(out, strings.ReplaceAll(table, "\n", nl)...)
	}
	return out
}

// sameTOML reports whether a and b are TOML documents with the same content.
func sameTOML(a, b []byte) bool {
	var da, db map[string]any
	return toml.Unmarshal(a, &da) == nil && toml.Unmarshal(b, &db) == nil && reflect.DeepEqual(da, db)
}

// losesText reports whether re-encoding the file from its parsed content
// loses something of its text: comments, formatting, its order.
func losesText(configTOML []byte) bool {
	if len(bytes.TrimSpace(configTOML)) == 0 {
		return false
	}
	var top map[string]any
	if err := toml.Unmarshal(configTOML, &top); err != nil {
		return true
	}
	encoded, err := toml.Marshal(top)
	return err != nil || !bytes.Equal(encoded, configTOML)
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

// tomlPath spells keys as a dotted TOML key.
func tomlPath(keys []string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = tomlKey(k)
	}
	return strings.Join(quoted, ".")
}

// tomlKey spells a key bare where TOML allows it (A-Za-z0-9_-), else quoted.
func tomlKey(k string) string {
	bare := k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
	if bare {
		return k
	}
	return strconv.Quote(k)
}
