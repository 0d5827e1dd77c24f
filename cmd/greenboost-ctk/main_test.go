package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A word among the flags fails the command before it does anything: the
// flags after it would be dropped (a dry run would write, --config would
// name the default file).
func TestCommandsRefuseArguments(t *testing.T) {
	daemonJSON := filepath.Join(t.TempDir(), "daemon.json")
	for _, args := range [][]string{
		{"runtime", "configure", "--config", daemonJSON, "containerd"},
		{"gc", "now"},
		{"status", "all"},
		{"config", "default", "x"},
	} {
		err := newApp().Run(append([]string{"greenboost-ctk"}, args...))
		if err == nil || !strings.Contains(err.Error(), "takes no arguments") || !strings.Contains(err.Error(), args[len(args)-1]) {
			t.Errorf("%v: %v, want an error naming the argument", args, err)
		}
	}
	if _, err := os.Stat(daemonJSON); !os.IsNotExist(err) {
		t.Errorf("runtime configure wrote %s despite the error (%v)", daemonJSON, err)
	}
}
