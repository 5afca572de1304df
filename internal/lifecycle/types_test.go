package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) string { return readFixtureB(t, name) }

func readFixtureB(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "gunicorn", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestLabels pins the label values: they are metric label values and a
// dashboard contract.
func TestLabels(t *testing.T) {
	join := func(n int, f func(i int) string) string {
		var s []string
		for i := 0; i < n; i++ {
			s = append(s, f(i))
		}
		return strings.Join(s, ",")
	}
	tests := []struct{ got, want string }{
		{join(NumExitCauses, func(i int) string { return AllExitCauses[i].String() }),
			"timeout,sigkill,signal,error,boot_failure,max_requests,reload,scale_down,shutdown,terminated,unknown"},
		{join(NumSignals, func(i int) string { return AllSignals[i].String() }),
			"SIGKILL,SIGTERM,SIGABRT,SIGSEGV,SIGBUS,SIGHUP,SIGUSR2,SIGINT,SIGQUIT,other"},
		{join(NumMasterSignals, func(i int) string { return AllMasterSignals[i].String() }),
			"hup,ttin,ttou,usr1,usr2,winch,term,int,quit"},
		{join(NumBootFailureReasons, func(i int) string { return AllBootFailureReasons[i].String() }),
			"worker_boot,app_load"},
		{strings.Join(AllFactKinds, ","),
			"worker_timeout,worker_exit,worker_boot,master_start,master_reload,master_shutdown,boot_failure,master_signal,master_promoted,master_not_reaping,worker_timeout_frame"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("labels %s, want %s", tc.got, tc.want)
		}
	}
	for i, c := range AllExitCauses {
		if int(c) != i {
			t.Errorf("AllExitCauses[%d] = %d", i, c)
		}
	}
	if ExitCause(NumExitCauses).String() != "invalid" || Signal(NumSignals).String() != "invalid" ||
		MasterSignal(NumMasterSignals).String() != "invalid" || BootFailureReason(NumBootFailureReasons).String() != "invalid" {
		t.Error("out-of-range values have labels")
	}
}

func TestSignalFromNumber(t *testing.T) {
	for n, want := range map[int]Signal{9: SigKILL, 15: SigTERM, 6: SigABRT, 11: SigSEGV, 7: SigBUS, 1: SigHUP, 12: SigUSR2, 2: SigINT, 3: SigQUIT, 24: SigOther, -1: SigOther, 0: SigOther} {
		if got := SignalFromNumber(n); got != want {
			t.Errorf("SignalFromNumber(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.PendingWindow != 3*time.Second || o.ActionWindow != time.Minute || o.MaxTrackedPIDs != 4096 || o.Now == nil {
		t.Errorf("defaults %+v", o)
	}
}
