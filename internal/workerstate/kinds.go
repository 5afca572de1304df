package workerstate

// StuckKind is what a stuck worker is doing; a closed set, usable as a
// metric label value through String.
type StuckKind int

// The stuck kinds. The order is the classification's (see the package doc).
const (
	KindOther      StuckKind = iota // none of the below
	KindSocketRead                  // blocked reading a socket (TCP: peer and local port known)
	KindCPU                         // running, or CPU time rising between samples
	KindFutex                       // waiting on a lock (futex)
	KindSleep                       // sleeping (nanosleep, or select/poll with no descriptors)
	KindDisk                        // uninterruptible sleep (state D): disk or network file system
	NumStuckKinds                   // the number of kinds; not a kind
)

var kindNames = [NumStuckKinds]string{"other", "socket_read", "cpu", "futex", "sleep", "disk"}

// String returns the kind's label value: "other", "socket_read", "cpu",
// "futex", "sleep" or "disk".
func (k StuckKind) String() string {
	if k < 0 || k >= NumStuckKinds {
		return "other"
	}
	return kindNames[k]
}

// StuckKinds lists every kind, so collectors can initialise every series.
func StuckKinds() []StuckKind {
	out := make([]StuckKind, NumStuckKinds)
	for i := range out {
		out[i] = StuckKind(i)
	}
	return out
}
