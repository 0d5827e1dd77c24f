package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/shim/lowlevel"
)

// ReportFailure tells the engine why the wrapper failed: one line on stderr
// and, when the engine gave runc a --log file, an error entry there in the
// same format, which is where containerd's shim looks for the reason.
func ReportFailure(argv []string, err error) {
	msg := "greenboost-runtime: " + err.Error()
	fmt.Fprintln(os.Stderr, msg)
	args := lowlevel.ParseArgs(argv[1:])
	path := logFilePath(args.Log)
	if path == "" {
		return
	}
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	now := time.Now().Format(time.RFC3339Nano)
	if args.LogFormat == "json" {
		line, _ := json.Marshal(map[string]string{"level": "error", "msg": msg, "time": now})
		fmt.Fprintf(f, "%s\n", line)
		return
	}
	fmt.Fprintf(f, "time=%q level=error msg=%q\n", now, msg)
}

// logFilePath is the file that the runtime's --log value names, or "" for
// none. crun also takes "file:PATH", and "journald:ID" or "syslog:ID",
// which are not files: their entries are crun's own to write.
func logFilePath(log string) string {
	kind, rest, found := strings.Cut(log, ":")
	switch {
	case !found:
		return log
	case kind == "file":
		return rest
	case kind == "journald" || kind == "syslog":
		return ""
	}
	return log
}
