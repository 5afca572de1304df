package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gunicorn-reflex/gunicorn-reflex/receiver/intent"
)

// Journal is the durable list of alerts accepted but not yet decided: the
// intent a request records before it is answered. It is one small JSON
// file, replaced atomically (temp file, fsync, rename, fsync of the
// directory) on every change, so a crash leaves the old or the new list.
type Journal struct {
	path string
}

// NewJournal returns the journal at path (created on the first Save).
func NewJournal(path string) *Journal { return &Journal{path: path} }

type journalFile struct {
	Version int            `json:"version"`
	Alerts  []intent.Alert `json:"alerts"`
}

// Load returns the alerts left by the last run; none when the file does
// not exist. A file that cannot be decoded is moved aside (kept as
// evidence) and reported as an error with no alerts.
func (j *Journal) Load() ([]intent.Alert, error) {
	raw, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var f journalFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unknown version %d", f.Version)
		}
		aside := j.path + ".corrupt"
		if rerr := os.Rename(j.path, aside); rerr != nil {
			return nil, fmt.Errorf("journal %s: %w (and not moved aside: %w)", j.path, err, rerr)
		}
		return nil, fmt.Errorf("journal %s (moved to %s): %w", j.path, aside, err)
	}
	for _, a := range f.Alerts {
		if _, ok := intent.ParseAction(string(a.Action)); !ok || a.App == "" {
			return nil, fmt.Errorf("journal %s: alert %q for app %q: not an action", j.path, a.Action, a.App)
		}
	}
	return f.Alerts, nil
}

// Save replaces the journal with alerts and returns once it is on disk.
func (j *Journal) Save(alerts []intent.Alert) error {
	data, err := json.Marshal(journalFile{Version: 1, Alerts: alerts})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	dir := filepath.Dir(j.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(j.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}
