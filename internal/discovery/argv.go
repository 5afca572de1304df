package discovery

import (
	"path"
	"regexp"
	"strings"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/procinfo"
)

// invocation is what a process's command line says about Gunicorn.
type invocation struct {
	// Titled is true for a setproctitle title ("gunicorn: master [app]"):
	// the original argv is gone.
	Titled bool
	// Role is "master" or "worker" for a titled process ("" otherwise).
	Role string
	// TitleName is the proc_name inside the title's brackets.
	TitleName string
	// Args are the Gunicorn arguments (after the program, the script or
	// "-m gunicorn") of an untitled process.
	Args []string
	// Module is true for `python -m gunicorn`.
	Module bool
}

var pythonRE = regexp.MustCompile(`^(python|pypy)[0-9.]*[a-z]?$`)

// parseInvocation recognises a Gunicorn process from its command line:
//   - a setproctitle title "gunicorn: <role> [<name>]";
//   - the gunicorn script run directly (argv[0] "gunicorn", rare) or by the
//     kernel through its #! line: "/usr/bin/python3 /usr/bin/gunicorn ...",
//     ".../venv/bin/python .../venv/bin/gunicorn ...";
//   - "python3 -m gunicorn ..." (and -m gunicorn.app.wsgiapp);
//   - a USR2 re-exec of the -m form, whose argv[1] is the module's file
//     ".../gunicorn/__main__.py".
func parseInvocation(cmdline []string) (invocation, bool) {
	if len(cmdline) == 0 {
		return invocation{}, false
	}
	if t, ok := procinfo.ParseTitle(cmdline); ok {
		return invocation{Titled: true, Role: t.Role, TitleName: t.Name}, true
	}
	prog := path.Base(cmdline[0])
	if isGunicornScript(cmdline[0]) {
		return invocation{Args: cmdline[1:]}, true
	}
	if !pythonRE.MatchString(prog) {
		return invocation{}, false
	}
	// Skip the interpreter's own options to find the script or -m module.
	args := cmdline[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) && isGunicornScript(args[i+1]) {
				return invocation{Args: args[i+2:]}, true
			}
			return invocation{}, false
		case a == "-" || !strings.HasPrefix(a, "-"):
			if isGunicornScript(a) {
				return invocation{Args: args[i+1:]}, true
			}
			return invocation{}, false
		case strings.HasPrefix(a, "--"):
			// --check-hash-based-pycs MODE is the only long option with a
			// separate value; the rest are flags (--help, --version, ...).
			if a == "--check-hash-based-pycs" {
				i++
			}
			continue
		}
		// A cluster of short options such as -u, -OO, -Wignore, -um mod.
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !strings.ContainsRune("cmWX", rune(c)) {
				continue
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return invocation{}, false
				}
				i++
				val = args[i]
			}
			switch c {
			case 'c':
				return invocation{}, false
			case 'm':
				if val == "gunicorn" || val == "gunicorn.app.wsgiapp" {
					return invocation{Args: args[i+1:], Module: true}, true
				}
				return invocation{}, false
			}
			break // -W/-X consumed their value
		}
	}
	return invocation{}, false
}

func isGunicornScript(p string) bool {
	switch path.Base(p) {
	case "gunicorn", "gunicorn3":
		return true
	}
	return strings.HasSuffix(p, "gunicorn/__main__.py") || strings.HasSuffix(p, "gunicorn/app/wsgiapp.py")
}

// options is a parsed Gunicorn command line: setting name (as in
// gunicorn/config.py) to values in order, and positional arguments.
type options struct {
	values     map[string][]string
	positional []string
}

func (o options) last(setting string) (string, bool) {
	v := o.values[setting]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// cliOption is one Gunicorn command-line option.
type cliOption struct {
	setting string
	flag    bool // takes no value
}

// gunicornOptions is Gunicorn's option table (19.9 to 23.0: gunicorn/config.py
// settings with a cli). Flags are listed so their next argument is not taken
// as their value.
var gunicornOptions = func() map[string]cliOption {
	m := map[string]cliOption{}
	add := func(setting string, flag bool, names ...string) {
		for _, n := range names {
			m[n] = cliOption{setting: setting, flag: flag}
		}
	}
	for _, f := range []struct {
		setting string
		names   []string
	}{
		{"capture_output", []string{"--capture-output"}},
		{"check_config", []string{"--check-config"}},
		{"control_socket_disable", []string{"--no-control-socket"}},
		{"print_config", []string{"--print-config"}},
		{"daemon", []string{"-D", "--daemon"}},
		{"disable_redirect_access_to_syslog", []string{"--disable-redirect-access-to-syslog"}},
		{"do_handshake_on_connect", []string{"--do-handshake-on-connect"}},
		{"enable_stdio_inheritance", []string{"-R", "--enable-stdio-inheritance"}},
		{"initgroups", []string{"--initgroups"}},
		{"preload_app", []string{"--preload"}},
		{"proxy_protocol", []string{"--proxy-protocol"}},
		{"reload", []string{"--reload"}},
		{"reuse_port", []string{"--reuse-port"}},
		{"sendfile", []string{"--no-sendfile"}},
		{"spew", []string{"--spew"}},
		{"strip_header_spaces", []string{"--strip-header-spaces"}},
		{"suppress_ragged_eofs", []string{"--suppress-ragged-eofs"}},
		{"syslog", []string{"--log-syslog"}},
		{"tolerate_dangerous_framing", []string{"--tolerate-dangerous-framing"}},
		{"permit_unconventional_http_method", []string{"--permit-unconventional-http-method"}},
		{"permit_unconventional_http_version", []string{"--permit-unconventional-http-version"}},
		{"casefold_http_method", []string{"--casefold-http-method"}},
		{"permit_obsolete_folding", []string{"--permit-obsolete-folding"}},
		{"help", []string{"-h", "--help"}},
		{"version", []string{"-v", "--version"}},
	} {
		add(f.setting, true, f.names...)
	}
	for _, v := range []struct {
		setting string
		names   []string
	}{
		{"access_log_format", []string{"--access-logformat"}},
		{"accesslog", []string{"--access-logfile"}},
		{"backlog", []string{"--backlog"}},
		{"bind", []string{"-b", "--bind"}},
		{"ca_certs", []string{"--ca-certs"}},
		{"cert_reqs", []string{"--cert-reqs"}},
		{"certfile", []string{"--certfile"}},
		{"chdir", []string{"--chdir"}},
		{"ciphers", []string{"--ciphers"}},
		{"config", []string{"-c", "--config"}},
		{"control_socket", []string{"--control-socket"}},
		{"dogstatsd_tags", []string{"--dogstatsd-tags"}},
		{"errorlog", []string{"--error-logfile", "--log-file"}},
		{"forwarded_allow_ips", []string{"--forwarded-allow-ips"}},
		{"forwarder_headers", []string{"--forwarder-headers"}},
		{"header_map", []string{"--header-map"}},
		{"graceful_timeout", []string{"--graceful-timeout"}},
		{"group", []string{"-g", "--group"}},
		{"keepalive", []string{"--keep-alive"}},
		{"keyfile", []string{"--keyfile"}},
		{"limit_request_field_size", []string{"--limit-request-field_size", "--limit-request-field-size"}},
		{"limit_request_fields", []string{"--limit-request-fields"}},
		{"limit_request_line", []string{"--limit-request-line"}},
		{"logconfig", []string{"--log-config"}},
		{"logconfig_json", []string{"--log-config-json"}},
		{"logger_class", []string{"--logger-class"}},
		{"loglevel", []string{"--log-level"}},
		{"max_requests", []string{"--max-requests"}},
		{"max_requests_jitter", []string{"--max-requests-jitter"}},
		{"paste", []string{"--paste", "--paster"}},
		{"pidfile", []string{"-p", "--pid"}},
		{"proc_name", []string{"-n", "--name"}},
		{"proxy_allow_ips", []string{"--proxy-allow-from"}},
		{"pythonpath", []string{"--pythonpath"}},
		{"raw_env", []string{"-e", "--env"}},
		{"raw_paste_global_conf", []string{"--paste-global"}},
		{"reload_engine", []string{"--reload-engine"}},
		{"reload_extra_files", []string{"--reload-extra-file"}},
		{"ssl_version", []string{"--ssl-version"}},
		{"statsd_host", []string{"--statsd-host"}},
		{"statsd_prefix", []string{"--statsd-prefix"}},
		{"syslog_addr", []string{"--log-syslog-to"}},
		{"syslog_facility", []string{"--log-syslog-facility"}},
		{"syslog_prefix", []string{"--log-syslog-prefix"}},
		{"threads", []string{"--threads"}},
		{"timeout", []string{"-t", "--timeout"}},
		{"umask", []string{"-m", "--umask"}},
		{"user", []string{"-u", "--user"}},
		{"worker_class", []string{"-k", "--worker-class"}},
		{"worker_connections", []string{"--worker-connections"}},
		{"worker_tmp_dir", []string{"--worker-tmp-dir"}},
		{"workers", []string{"-w", "--workers"}},
	} {
		add(v.setting, false, v.names...)
	}
	return m
}()

// lookupLong finds a long option, allowing argparse's unambiguous prefix
// abbreviations ("--work" for "--workers").
func lookupLong(name string) (cliOption, bool) {
	if o, ok := gunicornOptions[name]; ok {
		return o, true
	}
	var found cliOption
	n := 0
	for k, o := range gunicornOptions {
		if strings.HasPrefix(k, "--") && strings.HasPrefix(k, name) {
			if n > 0 && o.setting == found.setting {
				continue // two spellings of one setting
			}
			found = o
			n++
		}
	}
	return found, n == 1
}

// parseOptions parses Gunicorn arguments the way its argparse parser does:
// "--opt value", "--opt=value", "-b x", "-bx", "-b=x", "-w4", clustered
// flags ("-Dw4"), "--" ending options. An unknown long option (a newer
// Gunicorn) takes the next argument as its value when that does not start
// with "-" and is not the last argument (the APP_MODULE usually is).
func parseOptions(args []string) options {
	o := options{values: map[string][]string{}}
	set := func(setting, v string) { o.values[setting] = append(o.values[setting], v) }
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.positional = append(o.positional, args[i+1:]...)
			return o
		case a == "-" || !strings.HasPrefix(a, "-"):
			o.positional = append(o.positional, a)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			opt, known := lookupLong(name)
			switch {
			case known && opt.flag:
				set(opt.setting, "true")
			case hasVal:
				if known {
					set(opt.setting, val)
				}
			case known:
				if i+1 < len(args) {
					i++
					set(opt.setting, args[i])
				}
			default:
				if i+2 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++
				}
			}
		default:
			// Short options, possibly clustered: -D, -w4, -Dw 4, -b=x.
			for j := 1; j < len(a); j++ {
				opt, ok := gunicornOptions["-"+string(a[j])]
				if !ok {
					break // unknown short option: ignore the rest of the cluster
				}
				if opt.flag {
					set(opt.setting, "true")
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if a[j+1:] == "" {
					if i+1 >= len(args) {
						break
					}
					i++
					val = args[i]
				}
				set(opt.setting, val)
				break
			}
		}
	}
	return o
}

// splitShell splits a GUNICORN_CMD_ARGS value the way Python's shlex.split
// does for the common cases: whitespace separation, single quotes, double
// quotes with backslash escapes, and backslash escapes outside quotes.
func splitShell(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		inTok bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune("\\\"$`\n", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inTok = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inTok = true
		case r == ' ' || r == '\t' || r == '\n':
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out
}
