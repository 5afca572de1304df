package lifecycle

import (
	"testing"
)

// Gunicorn >= 22 logs the aborted worker's traceback after its WORKER
// TIMEOUT; the innermost app frame is a fact, once per timeout, and the
// /error request's traceback (no timeout) is none. 21 logs no traceback.
func TestFixtureTimeoutFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []Fact
	}{
		{"v24/error.log", []Fact{
			{PID: 30231, Time: at("2026-12-01 19:19:55"), Attrs: map[string]string{AttrAppFrame: "/srv/fixapp/fixapp.py:24 in app", AttrCode: "time.sleep(s)"}},
			{PID: 30230, Time: at("2026-12-01 19:20:00"), Attrs: map[string]string{AttrAppFrame: "/srv/fixapp/fixapp.py:30 in app", AttrCode: "while time.monotonic() < end:"}},
		}},
		{"v25/error.log", []Fact{
			{PID: 30650, Attrs: map[string]string{AttrAppFrame: "/srv/fixapp/fixapp.py:24 in app"}},
			{PID: 30655, Attrs: map[string]string{AttrAppFrame: "/srv/fixapp/fixapp.py:30 in app"}},
		}},
		{"v26/error.log", []Fact{
			{PID: 31302, Time: at("2026-12-01 19:22:25"), Attrs: map[string]string{AttrAppFrame: "/srv/fixapp/fixapp.py:24 in app", AttrFunction: "app", AttrLine: "24"}},
			{PID: 31313, Attrs: map[string]string{AttrAppFrame: "/srv/fixapp/fixapp.py:30 in app", AttrFile: "/srv/fixapp/fixapp.py"}},
		}},
		{"v21/error.log", nil},
		{"20.1-lifecycle/error.log", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := replay(t, tc.name)
			var got []Fact
			for _, f := range r.facts {
				if f.Kind == FactWorkerTimeoutFrame {
					got = append(got, f)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("frames %+v, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.PID != w.PID || (!w.Time.IsZero() && !g.Time.Equal(w.Time)) {
					t.Errorf("frame %d: pid %d at %v, want %d at %v", i, g.PID, g.Time, w.PID, w.Time)
				}
				for k, v := range w.Attrs {
					if g.Attrs[k] != v {
						t.Errorf("frame %d: %s = %q, want %q", i, k, g.Attrs[k], v)
					}
				}
				if want := "innermost app frame at " + w.Attrs[AttrAppFrame]; g.Detail != want {
					t.Errorf("frame %d: detail %q, want %q", i, g.Detail, want)
				}
			}
		})
	}
}

// Which frame is the app's: the innermost one outside Gunicorn, the
// standard library and installed packages; else the innermost outside
// Gunicorn.
func TestTimeoutFrameChoice(t *testing.T) {
	const head = "[2026-12-01 10:00:00 +0000] [1] [INFO] Starting gunicorn 23.0.0\n" +
		"[2026-12-01 10:00:00 +0000] [2] [INFO] Booting worker with pid: 2\n" +
		"[2026-12-01 10:00:05 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:2)\n" +
		"[2026-12-01 10:00:05 +0000] [2] [ERROR] Error handling request /x\n" +
		"Traceback (most recent call last):\n" +
		"  File \"/usr/lib/python3/dist-packages/gunicorn/workers/sync.py\", line 178, in handle_request\n" +
		"    respiter = self.wsgi(environ, resp.start_response)\n"
	const tail = "  File \"/usr/lib/python3/dist-packages/gunicorn/workers/base.py\", line 204, in handle_abort\n" +
		"    sys.exit(1)\n" +
		"SystemExit: 1\n" +
		"[2026-12-01 10:00:05 +0000] [2] [INFO] Worker exiting (pid: 2)\n"
	for _, tc := range []struct {
		name, frames, want, code string
	}{
		{"app frame above the standard library",
			"  File \"/srv/shop/views.py\", line 88, in checkout\n    resp = urlopen(url)\n           ^^^^^^^^^^^^\n" +
				"  File \"/usr/lib/python3.11/urllib/request.py\", line 216, in urlopen\n    return opener.open(url, data, timeout)\n" +
				"  File \"/usr/lib/python3.11/socket.py\", line 706, in readinto\n    return self._sock.recv_into(b)\n",
			"/srv/shop/views.py:88 in checkout", "resp = urlopen(url)"},
		{"app frame above a library in a virtualenv",
			"  File \"/srv/shop/db.py\", line 12, in fetch\n    cur.execute(sql)\n" +
				"  File \"/srv/shop/venv/lib/python3.11/site-packages/psycopg2/extras.py\", line 146, in execute\n    return super().execute(query, vars)\n",
			"/srv/shop/db.py:12 in fetch", "cur.execute(sql)"},
		{"only library frames", "  File \"/usr/lib/python3.11/threading.py\", line 327, in wait\n    waiter.acquire()\n",
			"/usr/lib/python3.11/threading.py:327 in wait", ""},
		{"nothing but Gunicorn", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			f.lines(head + tc.frames + tail)
			var got []Fact
			for _, fa := range f.facts {
				if fa.Kind == FactWorkerTimeoutFrame {
					got = append(got, fa)
				}
			}
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("frames %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Attrs[AttrAppFrame] != tc.want || got[0].Attrs[AttrCode] != tc.code || got[0].PID != 2 {
				t.Fatalf("frames %+v, want one at %s (%q)", got, tc.want, tc.code)
			}
		})
	}
}

// Malformed frame lines are no frame and no panic.
func TestParseFrameBadInput(t *testing.T) {
	for _, s := range []string{`File "`, `File "x.py", line `, `File "x.py", line abc, in f`, `File "x.py", line -1, in f`,
		`File "x.py" line 3 in f`, `Traceback`, ``} {
		if fr, ok := parseFrame([]byte(s)); ok {
			t.Errorf("parseFrame(%q) = %+v, want no frame", s, fr)
		}
	}
	fr, ok := parseFrame([]byte(`File "/a/"b", line 3".py", line 7, in <module>`))
	if !ok || fr.file != `/a/"b", line 3".py` || fr.line != 7 || fr.function != "<module>" {
		t.Errorf("got %+v %v", fr, ok)
	}
}
