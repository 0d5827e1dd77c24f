package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"unlimited", 0, false},
		{"Unlimited", 0, false},
		{"0", 0, false},
		{"4096", 4096, false},
		{"512B", 512, false},
		{"1K", 1 << 10, false},
		{"64M", 64 << 20, false},
		{"64m", 64 << 20, false},
		{"1G", 1 << 30, false},
		{"1Gi", 1 << 30, false},
		{"1GiB", 1 << 30, false},
		{"1GB", 1 << 30, false},
		{"1g", 1 << 30, false},
		{"1gb", 1 << 30, false},
		{"0G", 0, false},
		{"2T", 2 << 40, false},
		{"1.5G", 3 << 29, false},
		{" 8M ", 8 << 20, false},
		{"", 0, true},
		{"bogus", 0, true},
		{"-1G", 0, true},
		{"1.5", 0, true},
		{"1X", 0, true},
		{"G", 0, true},
		{"1..5G", 0, true},
		{"1.G", 0, true},
		{"1 G", 0, true},
		{"16777216T", 0, true},
		{"18446744073709551615", 0, true},
		{"1i", 0, true},
		{"1I", 0, true},
		{"1iB", 0, true},
		{"0.0001K", 0, true},
		{"0.5", 0, true},
		{"0.0G", 0, false},
		{"1.5Ki", 1536, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSize(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), tt.in) || !strings.Contains(err.Error(), SizeForm)) {
			t.Errorf("ParseSize(%q) error %q does not quote the value and the expected form", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[uint64]string{0: "unlimited", 64 << 20: "64M", 1 << 30: "1G", 1000: "1000", 3 << 29: "1536M"} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1G", "64Mi", "512B", "unlimited", "0", "1.5T", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		// Whatever parses must round-trip through FormatSize.
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d; FormatSize gives %q which parses to %d, %v", s, n, FormatSize(n), back, err)
		}
	})
}
