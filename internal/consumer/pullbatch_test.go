package consumer

import "testing"

func TestPullBatch(t *testing.T) {
	tests := []struct{ maxAckPending, partitions, want int }{
		{10000, 32, 312},
		{10000, 4, MaxPullBatch},
		{1, 32, 1},
		{1000000, 1, MaxPullBatch},
	}
	for _, tt := range tests {
		if got := PullBatch(tt.maxAckPending, tt.partitions); got != tt.want {
			t.Errorf("PullBatch(%d, %d) = %d, want %d", tt.maxAckPending, tt.partitions, got, tt.want)
		}
	}
}
