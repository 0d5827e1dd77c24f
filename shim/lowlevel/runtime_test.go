package lowlevel

import (
	"strings"
	"testing"
)

func TestSearchDirs(t *testing.T) {
	std := strings.Join(standardDirs, ":")
	for _, tt := range []struct{ path, want string }{
		{"", std},
		{"/opt/bin", "/opt/bin:" + std},
		{"rel:/opt/bin::/opt/bin", "/opt/bin:" + std},
		{"/usr/bin:/opt/bin", "/usr/bin:/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin"},
	} {
		if got := strings.Join(searchDirs(tt.path), ":"); got != tt.want {
			t.Errorf("searchDirs(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
