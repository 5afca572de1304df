package accessstats

import (
	dto "github.com/prometheus/client_model/go"
)

// Latency returns the request-duration histogram's count and sum (seconds)
// so far: the incident page charts the mean latency of each sampling
// interval from their increase. ok is false when the access log has no
// duration atom (nothing is observed then).
func (s *Stats) Latency() (count uint64, sum float64, ok bool) {
	if !s.parser.HasDuration() {
		return 0, 0, false
	}
	var m dto.Metric
	if err := s.duration.Write(&m); err != nil || m.GetHistogram() == nil {
		return 0, 0, false
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), true
}
