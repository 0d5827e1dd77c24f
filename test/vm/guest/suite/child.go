package suite

import (
	"fmt"
	"os"
)

// childMain runs a helper process's operation.
func childMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "child: no operation")
		return 2
	}
	fmt.Fprintf(os.Stderr, "child: unknown operation %q\n", args[0])
	return 2
}
