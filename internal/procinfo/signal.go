package procinfo

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoPidfd means the kernel has no pidfd_open(2) (Linux < 5.3): a signal
// cannot be sent without the risk of reaching a process that reused the
// pid, so none is sent.
var ErrNoPidfd = errors.New("pidfd_open not supported: refusing to signal by pid alone")

// Signal sends sig to the process id names, only if it still is that
// process: it opens a pidfd on id.PID, then Verifies id (start time,
// executable, command line) with the pidfd held, then signals through the
// pidfd. Once the pidfd is open it names that process and no other: if the
// process exits and its pid is reused after the check, the signal fails
// with ESRCH instead of reaching a stranger. Pids <= 1 are refused with
// ErrRefused and never signalled.
func (fs FS) Signal(id Identity, sig syscall.Signal) error {
	return SignalChecked(id.PID, sig, func() error { return fs.Verify(id) })
}

// SignalChecked sends sig to pid through a pidfd after check, run with the
// pidfd already open, has confirmed that pid is still the intended process;
// check's error is returned and nothing is sent when it fails. ErrRefused
// for pid <= 1, ErrGone when the process has exited, ErrNoPidfd on a
// kernel without pidfd_open.
func SignalChecked(pid int, sig syscall.Signal, check func() error) error {
	if pid <= 1 {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, ErrRefused)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, ErrNoPidfd)
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("signal %v to pid %d: %w: %w", sig, pid, ErrGone, err)
	case err != nil:
		return fmt.Errorf("signal %v to pid %d: pidfd_open: %w", sig, pid, classify(err))
	}
	defer unix.Close(fd)
	if err := check(); err != nil {
		return err
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %v to pid %d: %w: %w", sig, pid, ErrGone, err)
		}
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, classify(err))
	}
	return nil
}
