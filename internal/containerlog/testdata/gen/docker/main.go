package main

import (
	"fmt"
	"io"
	"os"

	"github.com/docker/docker/daemon/logger"
	"github.com/docker/docker/daemon/logger/jsonfilelog"
)

// main copies stdout.log and stderr.log (Gunicorn captures) into a
// json-file log with Docker's own copier (16 KiB splits, partial
// metadata) and json-file driver.
func main() {
	out, errf := os.Args[1], os.Args[2]
	l, err := jsonfilelog.New(logger.Info{LogPath: os.Args[3], ContainerID: "fixture", Config: map[string]string{}})
	if err != nil {
		panic(err)
	}
	o, _ := os.Open(out)
	e, _ := os.Open(errf)
	c := logger.NewCopier(map[string]io.Reader{"stdout": o, "stderr": e}, l)
	c.Run()
	c.Wait()
	l.Close()
	fmt.Println("ok")
}
