package follower

// RotationReason says how the follower noticed that the file it was reading
// stopped being the file at Path (or, for truncation, stopped holding the
// bytes already read). It is a closed set, fit for a metric label.
type RotationReason int

const (
	// RotationRename means the path now names another file and the old one still
	// has a name (logrotate's default "create" mode, Gunicorn's rename + USR1).
	RotationRename RotationReason = iota
	// RotationTruncate means the file was truncated in place (logrotate
	// copytruncate), detected by size below the read offset or by changed
	// bytes before the offset.
	RotationTruncate
	// RotationDeleteRecreate means the file was unlinked (it has no name left);
	// reading resumes when the path exists again.
	RotationDeleteRecreate
	// RotationSymlink means the path is a symlink that now points elsewhere.
	RotationSymlink

	// NumRotationReasons is the number of RotationReason values.
	NumRotationReasons
)

// RotationReasons returns every RotationReason, in order, so callers can
// initialise one series per reason to zero.
func RotationReasons() []RotationReason {
	return []RotationReason{RotationRename, RotationTruncate, RotationDeleteRecreate, RotationSymlink}
}

// String returns the label value for r: "rename", "truncate", "delete" or
// "symlink".
func (r RotationReason) String() string {
	switch r {
	case RotationRename:
		return "rename"
	case RotationTruncate:
		return "truncate"
	case RotationDeleteRecreate:
		return "delete"
	case RotationSymlink:
		return "symlink"
	default:
		return "unknown"
	}
}
