package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/pelletier/go-toml/v2"
)

// Runtimes returns [runtime] runtimes from the file at path, reading only
// that key: the wrapper's pass-through verbs must not fail or slow down on
// the rest of the config, which create validates. A missing file gives the
// defaults; a file that cannot be read or parsed, or a bad runtimes value,
// is an error: falling back to the defaults could run another runtime than
// the one that created the container, which would not know it.
// Path "" is DefaultPath, as for Load.
func Runtimes(path string) ([]string, error) {
	path = pathOrDefault(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default().Runtime.Runtimes, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	partial := struct {
		Runtime struct {
			Runtimes []string `toml:"runtimes"`
		} `toml:"runtime"`
	}{}
	partial.Runtime.Runtimes = Default().Runtime.Runtimes
	if err := toml.Unmarshal(data, &partial); err != nil {
		return nil, fmt.Errorf("config %s: %s", path, describeDecodeError(err))
	}
	if err := validateRuntimes(partial.Runtime.Runtimes); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return partial.Runtime.Runtimes, nil
}
