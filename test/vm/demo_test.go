//go:build vm

package vm

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/integration"
)

// TestDemo is `make demo` (DESIGN.md §7): it boots the VM, loads nothing by
// hand, and prints the transcript of two containers with different RAM
// budgets allocating through /dev/greenboost until EDQUOT,
// `greenboost-ctk status` while they run, and usage back to zero after they
// exit. The guest asserts the key facts as cases; the test fails on any.
func TestDemo(t *testing.T) {
	start := time.Now()
	fmt.Println("==> building the module, the toolkit and the guest, then booting the VM (qemu, TCG)")
	booted := false
	c := runIntegVM(t, integration.ModeDemo, 5*time.Minute, func(line string) {
		line = strings.TrimLeft(strings.TrimRight(line, "\r"), "\x1b[0123456789;?hlcJH")
		switch {
		case strings.HasPrefix(line, "GB-BOOTED") && !booted:
			booted = true
			fmt.Printf("==> VM booted after %v\n\n", time.Since(start).Round(time.Second))
		case strings.HasPrefix(line, integration.DemoPrefix):
			fmt.Println(strings.TrimPrefix(line, integration.DemoPrefix))
		case strings.HasPrefix(line, "FAIL "):
			fmt.Println("!! " + line)
		}
	})
	verdict := "all checks passed"
	if t.Failed() {
		verdict = "FAILED (see above)"
	}
	fmt.Printf("\n==> demo %s in %v (%d checks: %s)\n", verdict, time.Since(start).Round(time.Second),
		len(c.Order), strings.Join(c.Order, ", "))
	os.Stdout.Sync()
}
