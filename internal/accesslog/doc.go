// Package accesslog owns the parsing of Gunicorn's access log
// ("gunicorn.access" logger): it compiles an access_log_format into a
// matcher and turns each line into a Record (method, status, duration, body
// bytes, path, remote address, ...) without allocating. It is pure: no I/O,
// no metrics, no clock. Following files belong to the follower package and
// aggregation to the collectors.
//
// # Formats
//
// A format is what Gunicorn's --access-logformat takes: Python %-formatting
// with a mapping, so every directive is %(name)s. All atoms of
// glogging.Logger.atoms() are understood (h l u t r m U q H s B b f a T M D
// L p, %({header}i)s, %({header}o)s, %({var}e)s), as are literal text
// between atoms and %%. An atom Gunicorn does not know renders as "-" and is
// accepted as free text, so that a newer Gunicorn atom does not break
// parsing. JSON-shaped formats such as
//
//	{"remote":"%(h)s","request":"%(r)s","status":%(s)s,"duration_us":%(D)s}
//
// need no special support: they are literals and atoms like any other (note
// that Gunicorn does not JSON-escape values, it only writes '"' as `\"`).
//
// Width and flags (%(s)3s, %(D)-8s, %(D)08d, %(B)+d) are accepted on atoms
// that never contain spaces; %d/%i/%u only on the integer atoms T, M, D and
// B, because Python raises on %d with a string and Gunicorn then writes no
// line. Compile rejects with a *FormatError naming the directive and its
// byte offset: positional directives (%s), precision (%(a).20s, it
// truncates), '*' widths and widths over 1024, other conversions (%r, %x,
// ...), a width on a free-text atom, two atoms with no literal between them
// (unless the first is %(t)s or %(p)s, which end in a fixed byte), line
// breaks, and formats with no atom.
//
// # Matching strategy
//
// The format compiles to a list of fields, each with the literal text that
// follows it. A field's value ends where its trailing literal occurs; which
// occurrence is decided by the field's class:
//
//   - Token atoms (h l s m H b B T M D L, and p) never contain a space: the
//     value ends at the first occurrence of the literal before the first
//     space, and numeric atoms must be numbers (or "-", which Gunicorn
//     writes for an atom the running version does not have, e.g. %(M)s in
//     19.9; %(B)s may read "None"). %(h)s may be empty (unix-socket binds).
//   - %(t)s is "[...]" up to the first ']', and must have strftime's shape
//     "[dd/Mon/yyyy:HH:MM:SS +zzzz]" (the month name is left free because
//     it follows LC_TIME).
//   - Free-text atoms (u r f a U q, headers, environ, unknown) can contain
//     anything but a raw '"': Gunicorn's SafeAtoms writes every '"' in a
//     string value as `\"` and escapes nothing else (glogging.py SafeAtoms.__init__). So
//     when the literal after the field starts with '"' (a quoted field, or a
//     JSON string), the value ends at the first '"' that is not preceded by a
//     backslash and is followed by the rest of the literal. Because a value
//     may itself end in a backslash ("x\" renders as `"x\"`), an earlier `\"`
//     followed by the literal is kept as an alternative, and a '"' without a
//     backslash before it always stops the search.
//   - Unquoted free text (%(u)s in the default format, which may contain
//     spaces, or %({x-forwarded-for}i)s after "xff=") takes the shortest
//     value that is followed by the literal and, when the next field has a
//     fixed first byte ('[' for %(t)s, '<' for %(p)s, a digit or '-' for the
//     numeric atoms), by that byte. A candidate is rejected if it contains a
//     raw '"'. %(r)s must read "METHOD TARGET PROTOCOL"; unquoted, it must
//     hold exactly two spaces (Gunicorn's request-line parser refuses
//     targets with spaces), which anchors it.
//
// A line is first matched greedily: every field takes its first candidate,
// which is the whole cost for well-formed lines of usual formats (a format
// that starts with DefaultFormat, the common case, has that head matched by
// an unrolled copy of the same rules). If that fails, a backtracking matcher
// tries the other candidates in the same preference order, so that a later
// field with a fixed shape (the time, a status, a number at the end of the
// line) anchors an earlier ambiguous one: for instance a user name "a [b"
// is found by rejecting "[b [24/Nov/..." as a time. Both matchers agree on
// every line the greedy one accepts (tests and fuzz targets check this).
// The backtracking is bounded by a step budget (ErrAmbiguous when it is
// spent), so a hostile line costs microseconds.
//
// Limits. Two free-text fields separated by a literal that also occurs
// inside their values, with no fixed-shape field to anchor them (for example
// an unquoted "%(u)s %(a)s"), cannot be told apart: the first field gets the
// shortest possible value. A quoted value that ends in a backslash makes
// its closing quote look escaped (`"x\"`); the matcher tries the first '"'
// with no backslash before it, then each `\"` from left to right, and keeps
// the first that lets the rest of the line match. So a line with two
// complete readings (possible only when a later free-text field can absorb
// the difference) gets the first one; in DefaultFormat, alone or followed
// by atoms that are not free text (such as " %(D)s"), every line Gunicorn
// writes has exactly one reading.
//
// Lines from the uvicorn worker (which ignores --access-logformat) and
// environ values that are not strings (their Python repr is not escaped) do
// not match. Values are returned raw: a `\"` inside Path or UserAgent is
// still `\"` (see AppendUnescaped).
//
// # Durations written by handle_error
//
// Worker.handle_error writes the access line for a 400 (bad request), a 403
// (forbidden proxy or SSL error) and a 500 (an exception in the app; from
// Gunicorn 22 also a timeout or QUIT). It resets request_start first, so the
// T/M/D/L atoms measure only the error handling (about a millisecond) and
// not the request (base.py Worker.handle_error). Its environ comes from
// default_environ(), which has no PATH_INFO and no HTTP_* keys, and its
// Response has sent = 0. A line is therefore flagged ErrorHandler when its
// status is 400, 403 or 500 and every one of these atoms that the format has
// agrees: %(b)s/%(B)s is 0 (or "-"), %(f)s is "-", %(a)s is "-", %(U)s is
// "None". %({..}i)s atoms are not evidence: they read req.headers and still
// work in handle_error. The rule has no false negatives; its false positives
// are app-generated 400/403/500 responses with an empty body sent by a
// client with neither User-Agent nor Referer (with only %(s)s in the format,
// every 400/403/500). Record.DurationTrusted is HasDuration && !ErrorHandler
// and is what a latency histogram should observe.
package accesslog
