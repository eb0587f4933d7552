package fence

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
)

// MaxPosts bounds the posts remembered per channel; past it the oldest revisions are
// forgotten (they could only fence replays of very old letters).
const MaxPosts = 20000

// Key is the bucket key of a channel: a hash, since channel ids may hold bytes that
// keys may not. One entry per channel holds the revisions of all its posts, so that a
// publish costs one read and one write, whatever the number of posts it touches.
func Key(channel string) string {
	h := sha256.Sum256([]byte(channel))
	return hex.EncodeToString(h[:16])
}

// MarkKey is the bucket key of a partition's stored mark: the stream sequence up to
// which every event of the partition that was published has its revisions stored.
func MarkKey(partition int) string { return "partition." + strconv.Itoa(partition) }

// encode writes revs as (uvarint length, id, varint revision) records, newest
// revisions kept when there are more than MaxPosts.
func encode(revs map[string]int64) []byte {
	type pair struct {
		id  string
		rev int64
	}
	pairs := make([]pair, 0, len(revs))
	for id, rev := range revs {
		pairs = append(pairs, pair{id, rev})
	}
	if len(pairs) > MaxPosts {
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].rev > pairs[j].rev })
		pairs = pairs[:MaxPosts]
	}
	var out []byte
	for _, p := range pairs {
		out = binary.AppendUvarint(out, uint64(len(p.id)))
		out = append(out, p.id...)
		out = binary.AppendVarint(out, p.rev)
	}
	return out
}

func decode(b []byte) (map[string]int64, error) {
	revs := map[string]int64{}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("corrupt post id")
		}
		id := string(b[k : k+int(n)])
		b = b[k+int(n):]
		rev, k := binary.Varint(b)
		if k <= 0 {
			return nil, errors.New("corrupt revision")
		}
		b = b[k:]
		revs[id] = rev
	}
	return revs, nil
}
