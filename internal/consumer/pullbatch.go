package consumer

// MaxPullBatch caps the messages one pull request of a partition asks for, so that
// what a worker buffers per partition stays bounded whatever LIVE_MAX_ACK_PENDING is.
const MaxPullBatch = 500

// PullBatch is the Config.PullBatch of a worker holding maxAckPending unacked
// messages over partitions: its share per partition (the server lets no partition
// have more outstanding, broker.Topology.EnsureConsumers), at least 1 and at most
// MaxPullBatch. With the defaults, 10,000 over 32 partitions, it is 312.
func PullBatch(maxAckPending, partitions int) int {
	return min(max(maxAckPending/partitions, 1), MaxPullBatch)
}
