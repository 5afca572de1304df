package accesslog_test

import (
	"errors"
	"fmt"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/accesslog"
)

func Example() {
	p, err := accesslog.Compile(accesslog.DefaultFormat + ` %(D)s`)
	if err != nil {
		panic(err)
	}
	lines := []string{
		`127.0.0.1 - - [24/Nov/2026:17:50:14 +0000] "GET /sleep?s=1.5 HTTP/1.1" 200 23 "-" "curl/7.88.1" 1500481`,
		`127.0.0.1 - - [24/Nov/2026:17:50:12 +0000] "GET /error HTTP/1.1" 500 0 "-" "-" 1000`,
		`not an access line`,
	}
	var rec accesslog.Record // reused for every line
	for _, line := range lines {
		if err := p.Parse([]byte(line), &rec); err != nil {
			fmt.Println("bad line:", errors.Is(err, accesslog.ErrMismatch))
			continue
		}
		fmt.Println(rec.Method, rec.Status, string(rec.Path), rec.Duration, "trusted:", rec.DurationTrusted)
	}
	// Output:
	// GET 200 /sleep 1.500481s trusted: true
	// GET 500 /error 1ms trusted: false
	// bad line: true
}
