// Package group lets several workers share the partitions of the event stream with no
// coordinator of their own: each worker announces itself in a JetStream key-value
// bucket (membership.go), and every worker computes the same assignment of partitions
// to the live members from that list (assign.go). JetStream's pinned consumers make
// the assignment safe while views differ for a moment: a partition is delivered to one
// worker at a time whatever the workers believe. docs/scaling.md tells the whole story.
package group

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// Assign spreads the partitions 0..partitions-1 over the members and returns the
// partitions of each member. Every member computes the same answer from the same
// list, in any order. Each member gets ⌊P/N⌋ or ⌈P/N⌉ partitions; within that, a
// partition goes to the member that ranks it highest (rendezvous hashing), so that a
// member joining or leaving moves few partitions besides its own share.
func Assign(members []string, partitions int) map[string][]int {
	out := make(map[string][]int, len(members))
	if len(members) == 0 || partitions <= 0 {
		return out
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	n := len(ms)
	floor, big := partitions/n, partitions%n // big members may hold floor+1
	count := make(map[string]int, n)
	ranked := make([]string, n)
	for p := 0; p < partitions; p++ {
		copy(ranked, ms)
		slices.SortFunc(ranked, func(a, b string) int {
			sa, sb := score(a, p), score(b, p)
			switch {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0 // distinct ids: a tie of 64-bit hashes only reorders equals
		})
		for _, m := range ranked {
			c := count[m]
			if c < floor || c == floor && big > 0 {
				if c == floor {
					big--
				}
				count[m] = c + 1
				out[m] = append(out[m], p)
				break
			}
		}
	}
	return out
}

// score ranks member m for partition p.
func score(m string, p int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(m))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(p)))
	// FNV's low bits mix poorly for short inputs: finish with a 64-bit mixer.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
