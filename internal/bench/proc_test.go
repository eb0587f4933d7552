package bench

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		name         string
		line         string
		utime, stime int64
	}{
		{"plain", "4242 (worker) S 1 4242 4242 0 -1 4194560 1957 0 0 0 731 205 0 0 20 0 9 0 123456 1300000000 6000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n", 731, 205},
		{"name with spaces and parentheses", "77 (a b) c)) R 1 77 77 0 -1 4194560 10 0 0 0 12 3 0 0 20 0 1 0 5 100 10 1\n", 12, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, s, err := parseStat([]byte(c.line))
			if err != nil {
				t.Fatal(err)
			}
			if u != c.utime || s != c.stime {
				t.Fatalf("utime, stime = %d, %d; want %d, %d", u, s, c.utime, c.stime)
			}
		})
	}
	for _, bad := range []string{"", "12 worker S 1", "12 (worker) S 1 2 3", "12 (worker) S 1 2 3 4 5 6 7 8 9 10 x 5 0"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestProcCPUOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; i < 200_000_000; i++ { // about 0.1 s of work
		x += i ^ (x >> 3)
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before || x == 42 {
		t.Fatalf("CPU went from %v to %v", before, after)
	}
}
