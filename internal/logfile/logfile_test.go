package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The file and its folder appear with the first line at the level; a
// process that logs nothing, or only below the level, leaves no file.
func TestNewWritesAtItsLevelOnly(t *testing.T) {
	t.Setenv("TZ", "Asia/Tokyo") // times are written in UTC all the same
	path := filepath.Join(t.TempDir(), "greenboost", "runtime.log")
	logger := New(path, "warn")
	logger.Info("below the level")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a file for nothing logged: %v", err)
	}
	logger.Warn("kept", "id", "c1")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := string(data)
	if strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "time=") || !strings.Contains(line, `Z level=WARN msg=kept pid=`+fmt.Sprint(os.Getpid())+` id=c1`) || strings.Contains(line, "below") {
		t.Fatalf("log = %q", line)
	}
}
