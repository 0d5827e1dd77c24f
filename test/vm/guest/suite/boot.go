package suite

import (
	"os"
	"runtime"
	"strings"
	"time"
)

func init() {
	register(10, ModeTest, "boot", 30*time.Second, testBoot)
}

// testBoot: the guest runs as a child of /init with the file systems the
// other cases need.
func testBoot(t *T) {
	b, err := os.ReadFile("/proc/mounts")
	t.Check(err, "read /proc/mounts")
	for _, fs := range []string{" /proc proc", " /sys sysfs", " /dev devtmpfs", " /sys/fs/cgroup cgroup2"} {
		if !strings.Contains(string(b), fs) {
			t.Errorf("%s is not mounted", strings.TrimSpace(fs))
		}
	}
	if n := runtime.NumCPU(); n < 2 {
		t.Errorf("the guest has %d CPUs; the stress case wants several", n)
	}
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	t.Logf("kernel %s, %d CPUs", strings.TrimSpace(string(rel)), runtime.NumCPU())
}
