package alerts

import (
	"testing"

	"github.com/gunicorn-reflex/gunicorn-reflex/internal/reflextest"
)

// TestMain removes the gunicorn-reflex binary the live tests build once the
// tests end: it outlives every test, so no test's cleanup can.
func TestMain(m *testing.M) { reflextest.Main(m) }
