package config

import (
	"os"

	"github.com/pelletier/go-toml/v2"
)

// Runtimes returns only [runtime] runtimes from the file at path, leniently:
// the wrapper's pass-through verbs must not fail or slow down on the rest of
// the config, which create has already validated. Defaults on any problem.
// Path "" is DefaultPath, as for Load.
func Runtimes(path string) []string {
	data, err := os.ReadFile(pathOrDefault(path))
	if err != nil {
		return Default().Runtime.Runtimes
	}
	var partial struct {
		Runtime struct {
			Runtimes []string `toml:"runtimes"`
		} `toml:"runtime"`
	}
	if toml.Unmarshal(data, &partial) != nil || len(partial.Runtime.Runtimes) == 0 {
		return Default().Runtime.Runtimes
	}
	return partial.Runtime.Runtimes
}
