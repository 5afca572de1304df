package discovery

import "path"

// appDir is the app directory as the master was told it, for deploy
// markers: the chdir setting (relative ones resolved against the start
// directory), else the PWD it started in, else /proc/<pid>/cwd. The first
// two keep a release symlink (`current -> releases/r1`) that the kernel's
// cwd has already resolved; Gunicorn's own default chdir is the same PWD
// (gunicorn/util.py getcwd), and a HUP chdirs to it again, which is how a
// reload picks up a new release.
func (in *inspection) appDir() string {
	if v := in.val["chdir"]; v != "" && !in.nonLiteral["chdir"] {
		if path.IsAbs(v) {
			return path.Clean(v)
		}
		if path.IsAbs(in.startCwdHint) {
			return path.Join(in.startCwdHint, v)
		}
		return in.absQuiet(v)
	}
	if path.IsAbs(in.startCwdHint) {
		return path.Clean(in.startCwdHint)
	}
	return in.cwd
}
