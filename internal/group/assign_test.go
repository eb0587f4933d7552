package group

import (
	"fmt"
	"slices"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("worker-%d-%x", i, i*7919)
	}
	return out
}

func TestAssignCoversEveryPartitionOnceWithinOne(t *testing.T) {
	for _, tc := range []struct{ members, partitions int }{
		{1, 8}, {2, 8}, {3, 8}, {4, 8}, {3, 32}, {5, 32}, {7, 32}, {31, 32}, {32, 32}, {40, 32}, {10, 64}, {3, 1},
	} {
		t.Run(fmt.Sprintf("%d members %d partitions", tc.members, tc.partitions), func(t *testing.T) {
			ms := names(tc.members)
			got := Assign(ms, tc.partitions)
			seen := make([]int, tc.partitions)
			lo, hi := tc.partitions, 0
			for _, m := range ms {
				ps := got[m]
				lo, hi = min(lo, len(ps)), max(hi, len(ps))
				for _, p := range ps {
					seen[p]++
				}
			}
			for p, n := range seen {
				if n != 1 {
					t.Fatalf("partition %d assigned %d times", p, n)
				}
			}
			ceil := (tc.partitions + tc.members - 1) / tc.members
			if hi > ceil || hi-lo > 1 {
				t.Fatalf("spread %d..%d partitions per member; want within one and at most %d", lo, hi, ceil)
			}
		})
	}
}

func TestAssignIsTheSameInAnyOrder(t *testing.T) {
	ms := names(5)
	a := Assign(ms, 32)
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	b := Assign(append(rev, ms[0]), 32) // order and a repeat do not matter
	for _, m := range ms {
		if !slices.Equal(a[m], b[m]) {
			t.Fatalf("member %s: %v in one order, %v in another", m, a[m], b[m])
		}
	}
}

// A member joining takes about its share and moves little else: with rendezvous
// ranking, most partitions stay where they were.
func TestAssignMovesFewPartitionsWhenAMemberJoins(t *testing.T) {
	const partitions = 64
	for n := 1; n < 8; n++ {
		before := owners(Assign(names(n), partitions))
		after := owners(Assign(names(n+1), partitions))
		moved := 0
		for p := range before {
			if before[p] != after[p] {
				moved++
			}
		}
		share := partitions / (n + 1)
		// The newcomer's own share must move; allow as much again for rebalancing
		// the caps of the others.
		if moved > 2*share+2 {
			t.Errorf("%d → %d members: %d of %d partitions moved; the newcomer's share is %d", n, n+1, moved, partitions, share)
		}
	}
}

func owners(a map[string][]int) map[int]string {
	out := map[int]string{}
	for m, ps := range a {
		for _, p := range ps {
			out[p] = m
		}
	}
	return out
}

func TestAssignNobody(t *testing.T) {
	if got := Assign(nil, 8); len(got) != 0 {
		t.Fatalf("no members: %v", got)
	}
}
