package main

import (
	"context"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/incidentpage"
)

// incidentPages are the HTML pages over the incident engine and the
// sampler that keeps their chart's numbers.
type incidentPages struct {
	pages *incidentpage.Pages
	done  chan struct{} // closed when the sampler stopped
}

// startIncidentPages samples the collectors' state for the chart until ctx
// is done and builds the pages; it needs the incident engine.
func (d *daemon) startIncidentPages(ctx context.Context) error {
	series := incidentpage.NewSeries(incidentpage.Options{})
	feeder := incidentpage.NewFeeder(series, incidentpage.FeedOptions{Apps: d.apps.Snapshot, DB: d.scrapeDatabases})
	pages, err := incidentpage.NewPages(incidentpage.PageOptions{
		Incidents: incidentpage.EngineSource{Engine: d.incidents},
		Series:    series,
		Markers:   incidentpage.TimelineMarkers(d.timeline),
		Logger:    d.logger,
	})
	if err != nil {
		return err
	}
	d.incidentPages = &incidentPages{pages: pages, done: make(chan struct{})}
	go func() {
		defer close(d.incidentPages.done)
		feeder.Run(ctx)
	}()
	return nil
}

func (p *incidentPages) wait() {
	if p != nil {
		<-p.done
	}
}
