//go:build vm

package vm

import (
	"testing"
	"time"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/suite"
)

func guestCases(mode, filter string) ([]string, error) {
	names, err := suite.Names(mode, filter)
	if err == nil && len(names) == 0 {
		err = errNoCases
	}
	return names, err
}

// TestVM boots the 6.1 cloud kernel with the module and runs every guest
// case (test/vm/guest/suite) as a subtest.
func TestVM(t *testing.T) {
	runSuite(t, suite.ModeTest, 20*time.Minute)
}

// TestBench runs the module benchmarks in the VM and prints their results
// (BENCH lines); it fails only on errors.
func TestBench(t *testing.T) {
	c := runSuite(t, suite.ModeBench, 10*time.Minute)
	for _, b := range c.Bench {
		t.Logf("BENCH %s", b)
	}
}
