package discovery

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestParseInvocation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmdline []string
		ok      bool
		want    invocation
	}{
		{"titled master", []string{"gunicorn: master [app:app]"}, true, invocation{Titled: true, Role: "master", TitleName: "app:app"}},
		{"titled usr2 master", []string{"gunicorn: master [app:app.2]"}, true, invocation{Titled: true, Role: "master", TitleName: "app:app.2"}},
		{"titled worker", []string{"gunicorn: worker [web]"}, true, invocation{Titled: true, Role: "worker", TitleName: "web"}},
		{"title with brackets in name", []string{"gunicorn: master [a[b]]"}, true, invocation{Titled: true, Role: "master", TitleName: "a[b]"}},
		{"truncated title", []string{"gunicorn: master [very-long"}, true, invocation{Titled: true, Role: "master", TitleName: "very-long"}},
		{"shebang script", []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-w", "2", "app:app"}, true, invocation{Args: []string{"-w", "2", "app:app"}}},
		{"venv", []string{"/srv/venv/bin/python", "/srv/venv/bin/gunicorn", "app:app"}, true, invocation{Args: []string{"app:app"}}},
		{"versioned python", []string{"/usr/local/bin/python3.12", "/usr/local/bin/gunicorn"}, true, invocation{Args: []string{}}},
		{"python -m", []string{"/usr/bin/python3", "-m", "gunicorn", "app:app"}, true, invocation{Args: []string{"app:app"}, Module: true}},
		{"python -mgunicorn", []string{"python3", "-mgunicorn", "-b", ":80"}, true, invocation{Args: []string{"-b", ":80"}, Module: true}},
		{"python -u -X dev -m", []string{"python3", "-u", "-X", "dev", "-W", "ignore", "-m", "gunicorn", "x:y"}, true, invocation{Args: []string{"x:y"}, Module: true}},
		{"python -um cluster", []string{"python3", "-um", "gunicorn", "x:y"}, true, invocation{Args: []string{"x:y"}, Module: true}},
		{"python -m wsgiapp", []string{"python3", "-m", "gunicorn.app.wsgiapp", "x:y"}, true, invocation{Args: []string{"x:y"}, Module: true}},
		{"usr2 re-exec of -m", []string{"/usr/bin/python3", "/usr/lib/python3/dist-packages/gunicorn/__main__.py", "x:y"}, true, invocation{Args: []string{"x:y"}}},
		{"gunicorn argv0", []string{"gunicorn", "x:y"}, true, invocation{Args: []string{"x:y"}}},
		{"python -c", []string{"python3", "-c", "import gunicorn"}, false, invocation{}},
		{"other module", []string{"python3", "-m", "uvicorn", "app:app"}, false, invocation{}},
		{"other script", []string{"python3", "/usr/bin/celery", "worker"}, false, invocation{}},
		{"gunicorn as an argument", []string{"/usr/bin/vim", "/usr/bin/gunicorn"}, false, invocation{}},
		{"grep", []string{"grep", "gunicorn: master"}, false, invocation{}},
		{"empty", nil, false, invocation{}},
		{"python -m missing module", []string{"python3", "-m"}, false, invocation{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseInvocation(tc.cmdline)
			require.Equal(t, tc.ok, ok)
			if ok {
				require.Equal(t, tc.want, got)
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		want       map[string][]string
		positional []string
	}{
		{"long with space", []string{"--bind", "127.0.0.1:8000", "--timeout", "60", "app:app"},
			map[string][]string{"bind": {"127.0.0.1:8000"}, "timeout": {"60"}}, []string{"app:app"}},
		{"long with =", []string{"--error-logfile=/var/log/e.log", "--log-file=/var/log/f.log"},
			map[string][]string{"errorlog": {"/var/log/e.log", "/var/log/f.log"}}, nil},
		{"short forms", []string{"-b", "a:1", "-bb:2", "-w4", "-t=9", "-n", "web", "x:y"},
			map[string][]string{"bind": {"a:1", "b:2"}, "workers": {"4"}, "timeout": {"9"}, "proc_name": {"web"}}, []string{"x:y"}},
		{"flag cluster then value", []string{"-Dw", "3", "app"},
			map[string][]string{"daemon": {"true"}, "workers": {"3"}}, []string{"app"}},
		{"flags do not take values", []string{"--preload", "app:app", "--reload"},
			map[string][]string{"preload_app": {"true"}, "reload": {"true"}}, []string{"app:app"}},
		{"abbreviation", []string{"--time", "12", "--access-logfi", "a.log", "app"},
			map[string][]string{"timeout": {"12"}, "accesslog": {"a.log"}}, []string{"app"}},
		{"ambiguous abbreviation skipped", []string{"--work", "3", "app"},
			map[string][]string{}, []string{"app"}},
		{"unknown option with value", []string{"--future-opt", "v", "--timeout", "3", "app"},
			map[string][]string{"timeout": {"3"}}, []string{"app"}},
		{"unknown option before app module", []string{"--future-flag", "app"},
			map[string][]string{}, []string{"app"}},
		{"double dash", []string{"--", "--not-an-option"},
			map[string][]string{}, []string{"--not-an-option"}},
		{"value that looks like an option", []string{"--access-logformat", "-%(h)s", "-c", "conf.py"},
			map[string][]string{"access_log_format": {"-%(h)s"}, "config": {"conf.py"}}, nil},
		{"dash is stdout", []string{"--access-logfile", "-"},
			map[string][]string{"accesslog": {"-"}}, nil},
		{"missing value at end", []string{"--timeout"}, map[string][]string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseOptions(tc.args)
			require.Equal(t, tc.want, got.values)
			require.Equal(t, tc.positional, got.positional)
		})
	}
}

func TestSplitShell(t *testing.T) {
	for in, want := range map[string][]string{
		`--timeout 30 -w 4`:                  {"--timeout", "30", "-w", "4"},
		`--access-logformat '%(h)s "%(r)s"'`: {"--access-logformat", `%(h)s "%(r)s"`},
		`--name "my app" --x=a\ b`:           {"--name", "my app", "--x=a b"},
		`  `:                                 nil,
		`""`:                                 {""},
	} {
		require.Equal(t, want, splitShell(in), in)
	}
}

func TestParsePyConfig(t *testing.T) {
	src := `# gunicorn config
import multiprocessing, os

bind = ["127.0.0.1:8000",
        'unix:/run/app.sock']   # two listeners
workers = multiprocessing.cpu_count() * 2 + 1
timeout = 60
timeout = 90  # later wins
errorlog = "/var/log/app/error.log"
accesslog = os.path.join(BASE, "access.log")
access_log_format = '%(h)s %(l)s "%(r)s" %(s)s'
proc_name: str = "web"
pidfile = None
threads = 1_0
if DEBUG:
    timeout = 0
worker_class = r"uvicorn.workers.UvicornWorker"
unrelated = "x"
chdir == "compare"
`
	c := parsePyConfig(src)
	require.Equal(t, map[string][]string{
		"bind":              {"127.0.0.1:8000", "unix:/run/app.sock"},
		"timeout":           {"90"},
		"errorlog":          {"/var/log/app/error.log"},
		"access_log_format": {`%(h)s %(l)s "%(r)s" %(s)s`},
		"proc_name":         {"web"},
		"pidfile":           {},
		"threads":           {"10"},
		"worker_class":      {"uvicorn.workers.UvicornWorker"},
	}, c.values)
	require.Equal(t, map[string]bool{"workers": true, "accesslog": true}, c.nonLiteral)
}

func TestPyLiteral(t *testing.T) {
	for in, want := range map[string][]string{
		`"a" 'b'`:           {"ab"},
		`'it\'s'`:           {"it's"},
		`"""triple"""`:      {"triple"},
		`30.0`:              {"30"},
		`True`:              {"true"},
		`("a", "b",)`:       {"a", "b"},
		`[]`:                nil,
		`'x' # comment`:     {"x"},
		`r"C:\path"`:        {`C:\path`},
		`"\x41"`:            {`\x41`},
		`"unterminated`:     nil,
		`f"{x}.log"`:        nil,
		`"a" + b`:           nil,
		`["a", b]`:          nil,
		`cpu_count() * 2`:   nil,
		`-1`:                {"-1"},
		`"a" if x else "b"`: nil,
	} {
		got, ok := pyLiteral(in)
		if want == nil && in != `[]` {
			require.False(t, ok, "%s gave %q", in, got)
			continue
		}
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
}

func TestSniffLog(t *testing.T) {
	errorLog := `[2026-11-24 17:56:21 +0000] [24288] [INFO] Starting gunicorn 20.1.0
[2026-11-24 17:56:21 +0000] [24288] [INFO] Listening at: http://127.0.0.1:8781 (24288)
[2026-11-24 17:56:21 +0000] [24288] [INFO] Using worker: gthread
Traceback (most recent call last):
  File "x.py", line 1, in <module>
[2026-11-24 17:56:22 +0000] [24290] [ERROR] Error handling request /error
`
	accessLog := `127.0.0.1 - - [24/Nov/2026:17:56:21 +0000] "GET /ok HTTP/1.1" 200 2 "-" "curl/7.88.1"
127.0.0.1 - - [24/Nov/2026:17:56:22 +0000] "POST /x?y=1 HTTP/1.0" 500 0 "-" "-"
`
	custom := `127.0.0.1 "GET /ok HTTP/1.1" 200 0.001
`
	for _, tc := range []struct {
		name   string
		in     string
		kind   logKind
		worker string
	}{
		{"error log", errorLog, kindError, "gthread"},
		{"access log", accessLog, kindAccess, ""},
		{"custom access format", custom, kindAccess, ""},
		{"both in one file", errorLog + accessLog, kindBoth, "gthread"},
		{"cut first line", accessLog[10:], kindAccess, ""},
		{"something else", "hello\nworld\n", kindUnknown, ""},
		{"empty", "", kindUnknown, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sniffLog([]byte(tc.in))
			require.Equal(t, tc.kind, r.Kind, r.Kind.String())
			require.Equal(t, tc.worker, r.WorkerClass)
		})
	}
	require.Equal(t, kindAccess, kindByName("/var/log/app/access.log"))
	require.Equal(t, kindError, kindByName("/var/log/app/ERROR.log"))
	require.Equal(t, kindError, kindByName("/var/log/gunicorn.log"))
	require.Equal(t, kindUnknown, kindByName("/var/log/app/stdout.log"))
	require.Equal(t, kindUnknown, kindByName("/var/log/access-error.log"))
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"app:app":                 "app:app",
		"my app":                  "my_app",
		"/etc/app/production.ini": "etc_app_production.ini",
		"__main__":                "main__",
		"ünï":                     "n_",
		"":                        "",
		"---":                     "",
		strings.Repeat("x", 100):  strings.Repeat("x", 64),
	} {
		require.Equal(t, want, sanitizeName(in), in)
	}
}

func TestDedupeNames(t *testing.T) {
	mk := func(name string, ticks uint64, listen ...string) Master {
		m := Master{Name: name, Listen: listen}
		m.Identity.StartTicks = ticks
		return m
	}
	ms := []Master{
		mk("app:app", 10, "127.0.0.1:8001"),
		mk("app:app", 5, "[::1]:8002"),
		mk("web", 1, "unix:/run/web.sock"),
		mk("web", 2, "127.0.0.1:9000"),
		mk("solo", 3),
		mk("same", 7),
		mk("same", 4),
	}
	ms[5].Pidfile = "/run/same.pid"
	ms[6].Pidfile = "/srv/same.pid"
	dedupeNames(ms)
	got := []string{}
	for _, m := range ms {
		got = append(got, m.Name)
	}
	require.Equal(t, []string{"app:app-8001", "app:app-8002", "web-web", "web-9000", "solo", "same-same-2", "same-same"}, got)

	long := strings.Repeat("n", 64)
	ms = []Master{mk(long, 1, ":1"), mk(long, 2, ":2")}
	dedupeNames(ms)
	require.Equal(t, strings.Repeat("n", 62)+"-1", ms[0].Name)
	require.Len(t, ms[1].Name, 64)
}

func FuzzParseInvocation(f *testing.F) {
	for _, s := range []string{
		"gunicorn: master [app:app]", "/usr/bin/python3\x00/usr/bin/gunicorn\x00-w\x002\x00app:app",
		"python3\x00-um\x00gunicorn", "python3\x00-X\x00dev\x00-m", "python3\x00--\x00/x/gunicorn\x00a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(_ *testing.T, s string) {
		inv, ok := parseInvocation(strings.Split(s, "\x00"))
		if ok && !inv.Titled {
			parseOptions(inv.Args)
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{"--bind\x00a:1\x00-w4\x00app", "-Dw\x003", "--time=3\x00--", "-b=\x00-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o := parseOptions(strings.Split(s, "\x00"))
		for k := range o.values {
			require.NotEmpty(t, k)
		}
	})
}

func FuzzParsePyConfig(f *testing.F) {
	f.Add("bind = ['a', \"b\"]\ntimeout = 3\n")
	f.Add("errorlog = '''x\nlog = (\n\"a\",\n")
	f.Add("accesslog = r'\\'' # c\n")
	f.Fuzz(func(t *testing.T, s string) {
		c := parsePyConfig(s)
		for k := range c.values {
			require.True(t, pyConfigKeys[k], k)
		}
	})
}

func FuzzSniffLog(f *testing.F) {
	f.Add([]byte("[2026-11-24 17:56:21 +0000] [1] [INFO] Using worker: sync\n"))
	f.Add([]byte("1.2.3.4 - - [24/Nov/2026:17:56:21 +0000] \"GET / HTTP/1.1\" 200 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := sniffLog(b)
		require.GreaterOrEqual(t, r.ErrorLines+r.AccessLines, 0)
	})
}

func FuzzSanitizeName(f *testing.F) {
	f.Add("app:app")
	f.Add("/x y/ü")
	f.Fuzz(func(t *testing.T, s string) {
		n := sanitizeName(s)
		require.LessOrEqual(t, len(n), maxNameLen)
		require.True(t, utf8.ValidString(n))
		if n != "" {
			require.Regexp(t, `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`, n)
		}
	})
}

func FuzzSplitShell(f *testing.F) {
	f.Add(`--a 'b c' "d\"e" f\ g`)
	f.Fuzz(func(_ *testing.T, s string) { splitShell(s) })
}
