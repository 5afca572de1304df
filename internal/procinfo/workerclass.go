package procinfo

import "strings"

// builtinClasses maps the class paths of Gunicorn's own worker classes to
// the short names -k also accepts (gunicorn/workers/__init__.py
// SUPPORTED_WORKERS).
var builtinClasses = map[string]string{
	"gunicorn.workers.sync.syncworker":          "sync",
	"gunicorn.workers.gthread.threadworker":     "gthread",
	"gunicorn.workers.ggevent.geventworker":     "gevent",
	"gunicorn.workers.geventlet.eventletworker": "eventlet",
	"gunicorn.workers.gtornado.tornadoworker":   "tornado",
}

// NormalizeWorkerClass turns a --worker-class/-k value into the name the
// rest of this program compares: Gunicorn's short name for its own classes
// ("egg:gunicorn#gevent" and "gunicorn.workers.ggevent.GeventWorker" are
// "gevent"), and any other class as given, without surrounding spaces
// ("uvicorn.workers.UvicornWorker"). "" stays "" (unknown).
func NormalizeWorkerClass(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > len("egg:") && strings.EqualFold(v[:len("egg:")], "egg:") {
		if _, after, ok := strings.Cut(v, "#"); ok {
			v = after
		}
	}
	if short, ok := builtinClasses[strings.ToLower(v)]; ok {
		return short
	}
	switch l := strings.ToLower(v); l {
	case "sync", "gthread", "gevent", "eventlet", "tornado":
		return l
	}
	return v
}
