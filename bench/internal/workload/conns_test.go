package workload

import "testing"

func TestCountEstablished(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1167 1 0000 100 0 0 10 0
   1: 0100007F:AAB9 0100007F:1A0B 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000 20 4 30 10 -1
   2: 0100007F:AABA 0100007F:1A0B 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000 20 4 30 10 -1
   3: 0100007F:AABB 0100007F:1A0B 06 00000000:00000000 03:00000E93 00000000     0        0 0 3 0000
   4: 0100007F:AABC 0100007F:1A0C 01 00000000:00000000 00:00000000 00000000     0        0 2004 1 0000 20 4 30 10 -1
   5: 0100007F:1A0B 0100007F:AABD 01 00000000:00000000 00:00000000 00000000     0        0 2005 1 0000 20 4 30 10 -1
`
	ours := map[string]bool{"1167": true, "2001": true, "2004": true, "2005": true}
	for _, tc := range []struct {
		name   string
		port   int
		inodes map[string]bool
		want   int
	}{
		{"ours, to the port, established", 0x1A0B, ours, 1},
		{"another process's connection is not counted", 0x1A0B, map[string]bool{"2002": true}, 1},
		{"both", 0x1A0B, map[string]bool{"2001": true, "2002": true}, 2},
		{"connections to another port", 0x1A0C, ours, 1},
		{"a listener and time-wait are not established", 0x07E8, ours, 0},
		{"an accepted connection's local port is not its remote", 0xAABD, ours, 1},
		{"no sockets", 0x1A0B, nil, 0},
	} {
		if got := countEstablished(table, tc.port, tc.inodes); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestMedianAndMax(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		median, max float64
	}{
		{nil, 0, 0},
		{[]float64{3}, 3, 3},
		{[]float64{5, 1, 3}, 3, 5},
		{[]float64{4, 1, 3, 2}, 3, 4},
	} {
		if m, x := medianAndMax(tc.in); m != tc.median || x != tc.max {
			t.Errorf("%v: %v, %v; want %v, %v", tc.in, m, x, tc.median, tc.max)
		}
	}
}
