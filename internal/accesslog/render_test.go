package accesslog

import (
	"fmt"
	"strconv"
	"strings"
)

// request is what Gunicorn knows about one request when it writes the access
// line; gunicornLine renders it the way glogging.Logger.access does.
type request struct {
	Remote      string // REMOTE_ADDR; "" for unix sockets
	User        string // basic-auth user, "" for none
	Time        string // strftime result, brackets included
	Method      string
	RawURI      string
	Proto       string
	Status      int
	Sent        int64 // resp.sent; -1 for "no sent attribute"
	Referer     string
	Agent       string
	DurationUS  int64
	PID         int
	PathInfo    string // "" means absent (handle_error: renders "None")
	HasPathInfo bool
	Query       string
	ReqHeaders  map[string]string // lower-case names
	RespHeaders map[string]string
	Environ     map[string]string
}

// atoms builds Gunicorn's atoms() dict (glogging.py 20.1:277-304) with
// SafeAtoms' escaping already applied to string values.
func (r request) atoms() map[string]any {
	esc := func(s string) string { return strings.ReplaceAll(s, `"`, `\"`) }
	user := r.User
	if user == "" {
		user = "-"
	}
	sec, us := r.DurationUS/1e6, r.DurationUS%1e6
	b := "-"
	var bigB any = "None"
	if r.Sent >= 0 {
		b = strconv.FormatInt(r.Sent, 10)
		bigB = r.Sent
	}
	ref, ua := r.Referer, r.Agent
	if ref == "" {
		ref = "-"
	}
	if ua == "" {
		ua = "-"
	}
	pathInfo := "None"
	if r.HasPathInfo {
		pathInfo = r.PathInfo
	}
	m := map[string]any{
		"h": esc(r.Remote),
		"l": "-",
		"u": esc(user),
		"t": esc(r.Time),
		"r": esc(fmt.Sprintf("%s %s %s", r.Method, r.RawURI, r.Proto)),
		"s": esc(strconv.Itoa(r.Status)),
		"m": esc(r.Method),
		"U": esc(pathInfo),
		"q": esc(r.Query),
		"H": esc(r.Proto),
		"b": b,
		"B": bigB,
		"f": esc(ref),
		"a": esc(ua),
		"T": sec,
		"D": r.DurationUS,
		"M": sec*1000 + us/1000,
		"L": fmt.Sprintf("%d.%06d", sec, us),
		"p": fmt.Sprintf("<%d>", r.PID),
	}
	for k, v := range r.ReqHeaders {
		m["{"+strings.ToLower(k)+"}i"] = esc(v)
	}
	for k, v := range r.RespHeaders {
		m["{"+strings.ToLower(k)+"}o"] = esc(v)
	}
	for k, v := range r.Environ {
		m["{"+strings.ToLower(k)+"}e"] = esc(v)
	}
	return m
}

// gunicornLine renders format % SafeAtoms(atoms) with Python's %-formatting
// rules for the directives Compile accepts: %%, and %(key)[flags][width]
// with conversion s or d. Unknown keys render "-" (SafeAtoms.__getitem__,
// with {..} keys looked up lower-cased).
func gunicornLine(format string, r request) (string, error) {
	atoms := r.atoms()
	var out strings.Builder
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			out.WriteByte(c)
			i++
			continue
		}
		i++
		if i < len(format) && format[i] == '%' {
			out.WriteByte('%')
			i++
			continue
		}
		if i >= len(format) || format[i] != '(' {
			return "", fmt.Errorf("unsupported directive at %d", i)
		}
		depth, j := 1, i+1
		for ; j < len(format) && depth > 0; j++ {
			switch format[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		key := format[i+1 : j-1]
		i = j
		var minus, zero, plus, space bool
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			switch format[i] {
			case '-':
				minus = true
			case '0':
				zero = true
			case '+':
				plus = true
			case ' ':
				space = true
			}
			i++
		}
		width := 0
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			width = width*10 + int(format[i]-'0')
			i++
		}
		for i < len(format) && strings.IndexByte("hlL", format[i]) >= 0 {
			i++
		}
		conv := format[i]
		i++
		lookup := key
		if strings.HasPrefix(key, "{") {
			lookup = strings.ToLower(key)
		}
		v, ok := atoms[lookup]
		if !ok {
			v = "-"
		}
		var s, sign string
		switch conv {
		case 's':
			s = fmt.Sprint(v)
			zero = false
		case 'd', 'i', 'u':
			n, isInt := v.(int64)
			if !isInt {
				return "", fmt.Errorf("%%d on non-int atom %q (Python raises)", key)
			}
			s = strconv.FormatInt(n, 10)
			switch {
			case plus:
				sign = "+"
			case space:
				sign = " "
			}
		default:
			return "", fmt.Errorf("unsupported conversion %c", conv)
		}
		if pad := width - len(sign) - len(s); pad > 0 {
			switch {
			case minus:
				s = sign + s + strings.Repeat(" ", pad)
			case zero:
				s = sign + strings.Repeat("0", pad) + s // Python zero-pads after the sign
			default:
				s = strings.Repeat(" ", pad) + sign + s
			}
		} else {
			s = sign + s
		}
		out.WriteString(s)
	}
	return out.String(), nil
}

// okRequest is a well-formed request used as the base of many tests.
func okRequest() request {
	return request{
		Remote: "127.0.0.1", Time: "[24/Nov/2026:17:50:12 +0000]",
		Method: "GET", RawURI: "/api/v1/users/42?page=2", Proto: "HTTP/1.1",
		Status: 200, Sent: 1234, Referer: "", Agent: "curl/7.88.1",
		DurationUS: 1500481, PID: 20868, PathInfo: "/api/v1/users/42", HasPathInfo: true,
		Query: "page=2",
	}
}
