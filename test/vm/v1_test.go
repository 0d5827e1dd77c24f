//go:build vm

package vm

import (
	"testing"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/integration"
	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/suite"
)

// TestVMv1 boots the VM a second time with the memory controller on a cgroup
// v1 hierarchy, laid out like a hybrid host (v1 controllers under a tmpfs at
// /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified), and runs the v1 guest
// cases: the module loaded with cgroup_mode=auto accounts in the v1 memory
// hierarchy (hierarchy 1), ids are the v1 directory inodes, and limits,
// ancestor charging, EDQUOT, release and list work there. A separate boot:
// the memory controller cannot move between hierarchies.
func TestVMv1(t *testing.T) {
	runSuite(t, suite.ModeV1, 6*time.Minute)
}

// TestIntegrationV1 runs greenboost-runtime, runc (cgroupfs driver) and the
// hook on that hybrid layout: a container's budget is enforced in the v1
// memory hierarchy, released after delete, and gc cleans up after a crash.
func TestIntegrationV1(t *testing.T) {
	runIntegVM(t, integration.ModeIntegrationV1, 5*time.Minute, nil)
}
