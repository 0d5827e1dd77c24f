package config

import (
	"os"
	"slices"

	"github.com/pelletier/go-toml/v2/unstable"
)

// runtimesKey is the key Runtimes reads.
var runtimesKey = []string{"runtime", "runtimes"}

// Runtimes returns only [runtime] runtimes from the file at path, leniently:
// the wrapper's pass-through verbs must not fail or slow down on the rest of
// the config, which create has already validated. Defaults on any problem.
// Path "" is DefaultPath, as for Load. It walks the parsed document for the
// one key instead of decoding it: a decoder's first use costs each
// pass-through about 0.1 ms.
func Runtimes(path string) []string {
	data, err := os.ReadFile(pathOrDefault(path))
	if err != nil {
		return Default().Runtime.Runtimes
	}
	var p unstable.Parser
	p.Reset(data)
	var table, runtimes []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
		case unstable.KeyValue:
			if found, ok := runtimesIn(append(slices.Clone(table), keyParts(e.Key())...), e.Value()); ok {
				runtimes = found
			}
		}
	}
	if p.Error() != nil || len(runtimes) == 0 {
		return Default().Runtime.Runtimes
	}
	return runtimes
}

// runtimesIn returns the runtimes where key, whose value is v, is
// runtimesKey or an inline table holding it; ok says it is there. A value
// that is not a list of strings gives none, so the defaults apply.
func runtimesIn(key []string, v *unstable.Node) (runtimes []string, ok bool) {
	if slices.Equal(key, runtimesKey) {
		if v.Kind != unstable.Array {
			return nil, true
		}
		for it := v.Children(); it.Next(); {
			if it.Node().Kind != unstable.String {
				return nil, true
			}
			runtimes = append(runtimes, string(it.Node().Data))
		}
		return runtimes, true
	}
	if v.Kind == unstable.InlineTable {
		for it := v.Children(); it.Next(); {
			kv := it.Node()
			if found, in := runtimesIn(append(slices.Clone(key), keyParts(kv.Key())...), kv.Value()); in {
				runtimes, ok = found, true
			}
		}
	}
	return runtimes, ok
}
