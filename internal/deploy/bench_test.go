package deploy

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkObservePyScan is the worst pass: no release link and no git, so
// the bounded *.py scan runs over DefaultMaxFiles files in 4 levels.
func BenchmarkObservePyScan(b *testing.B) {
	root := b.TempDir()
	files := map[string]string{}
	for i := 0; i < DefaultMaxFiles; i++ {
		files[filepath.Join("app", fmt.Sprintf("p%d", i%10), fmt.Sprintf("q%d", i%7), fmt.Sprintf("m%d.py", i))] = ""
	}
	for p, c := range files {
		writeB(b, root, p, c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := Observe(Options{Root: root}, Target{Dir: "/app"})
		if err != nil || st.PyFiles != DefaultMaxFiles {
			b.Fatalf("%d files, %v", st.PyFiles, err)
		}
	}
}

// BenchmarkObserveReleaseGit is the usual pass: a release link and a git
// HEAD on a loose ref.
func BenchmarkObserveReleaseGit(b *testing.B) {
	root := b.TempDir()
	for p, c := range map[string]string{"srv/app/releases/r1/.git/HEAD": "ref: refs/heads/main\n",
		"srv/app/releases/r1/.git/refs/heads/main": sha1 + "\n", "srv/app/current": "->releases/r1"} {
		writeB(b, root, p, c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := Observe(Options{Root: root}, Target{Dir: "/srv/app/current"})
		if err != nil || st.GitHead != sha1 || st.Release == "" {
			b.Fatalf("%+v %v", st, err)
		}
	}
}
