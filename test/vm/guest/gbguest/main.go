// Command gbguest runs inside the test VM: /init starts it as
// "gbguest run", and it re-executes itself as "gbguest child ..." to put
// helper processes into cgroups, user namespaces and other credentials.
package main

import (
	"os"

	"github.com/greenboost/greenboost-container-toolkit/test/vm/guest/suite"
)

func main() {
	os.Exit(suite.Main(os.Args[1:]))
}
