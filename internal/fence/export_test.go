package fence

import dto "github.com/prometheus/client_model/go"

// metricsCaughtUpEvents is how many events this fence's catch-ups read.
func (f *Fence) metricsCaughtUpEvents() float64 {
	var m dto.Metric
	if err := f.metrics.caughtUpEvents.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
