package verify

import (
	"context"
	"fmt"
	"slices"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
	"github.com/gunicorn-reflex/gunicorn-reflex/internal/workerstate"
)

// MasterFunc returns the master a probe reads: a fixed identity for a
// scale or reload, the current master of the app (from the host's
// discovery, or systemd's MainPID) for a restart.
type MasterFunc func(ctx context.Context) (procinfo.Identity, error)

// Fixed is a MasterFunc that always returns id.
func Fixed(id procinfo.Identity) MasterFunc {
	return func(context.Context) (procinfo.Identity, error) { return id, nil }
}

// ProcProbe reads the app's workers straight from /proc, through the same
// worker model the exporter uses (workerstate: procinfo's roles, booting
// until a worker's first heartbeat notify), not from the last background
// sample, so a verification sees a change as soon as it happens.
func ProcProbe(fs procinfo.FS, master MasterFunc) Probe {
	sampler := workerstate.NewSampler(fs, workerstate.Options{})
	return func(ctx context.Context) (Sample, error) {
		id, err := master(ctx)
		if err != nil {
			return Sample{}, err
		}
		st, err := sampler.Sample("verify", id, 0, "")
		if err != nil {
			return Sample{Master: id}, fmt.Errorf("probe: %w", err)
		}
		s := Sample{Master: id, Workers: st.Workers, Booted: st.Workers - st.Booting, Exiting: st.Exiting}
		for _, w := range st.PerWorker {
			s.WorkerPIDs = append(s.WorkerPIDs, w.PID)
		}
		slices.Sort(s.WorkerPIDs)
		if ms, err := fs.Stat(id.PID); err == nil {
			s.Stopped = ms.State == 'T' || ms.State == 't' // stopped, or traced
		}
		return s, nil
	}
}
