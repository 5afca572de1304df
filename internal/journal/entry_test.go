package journal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecodeEntry(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Entry
		err      bool
	}{
		{"string", `{"MESSAGE":"[2026-12-01 10:00:00 +0000] [7] [INFO] Booting worker with pid: 8","__CURSOR":"s=a;i=1","_PID":"7","_SYSTEMD_INVOCATION_ID":"abc"}`,
			Entry{Message: []byte("[2026-12-01 10:00:00 +0000] [7] [INFO] Booting worker with pid: 8"), Cursor: "s=a;i=1", PID: 7, Invocation: "abc"}, false},
		// journalctl prints a MESSAGE that is not valid UTF-8 or holds
		// control bytes as an array of byte values.
		{"binary", `{"MESSAGE":[104,105,255,9,120],"__CURSOR":"c"}`, Entry{Message: []byte("hi\xff\tx"), Cursor: "c"}, false},
		{"crlf", `{"MESSAGE":"line\r","__CURSOR":"c"}`, Entry{Message: []byte("line"), Cursor: "c"}, false},
		{"escaped", `{"MESSAGE":"a \"q\" \u00e9","__CURSOR":"c"}`, Entry{Message: []byte("a \"q\" é"), Cursor: "c"}, false},
		{"null message keeps the cursor", `{"MESSAGE":null,"__CURSOR":"c"}`, Entry{Cursor: "c"}, true},
		{"no message", `{"__CURSOR":"c"}`, Entry{Cursor: "c"}, true},
		{"byte out of range", `{"MESSAGE":[300],"__CURSOR":"c"}`, Entry{Cursor: "c"}, true},
		{"several values", `{"MESSAGE":["a","b"],"__CURSOR":"c"}`, Entry{Cursor: "c"}, true},
		{"not json", `-- No entries --`, Entry{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeEntry([]byte(tc.in))
			if tc.err {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestArgs(t *testing.T) {
	since := time.Unix(1796163356, 45547000)
	require.Equal(t, []string{"--output=json", "--follow", "--no-tail", "--all", "--no-pager", "--quiet",
		"--output-fields=MESSAGE,_PID,_SYSTEMD_INVOCATION_ID", "--since=@1796163356.045547", "_SYSTEMD_UNIT=app.service", "_TRANSPORT=stdout"},
		Args("app.service", "", since))
	require.Contains(t, Args("app.service", "s=1;i=2", since), "--cursor=s=1;i=2")
	require.NotContains(t, Args("app.service", "s=1;i=2", since), "--since=@1796163356.045547")
}

func TestValidUnit(t *testing.T) {
	for _, ok := range []string{"app.service", "app@blue.service", "a-b_c.service"} {
		require.True(t, ValidUnit(ok), ok)
	}
	for _, bad := range []string{"", "-app.service", ".service", "a b.service", "a=b", "a/b.service", "a\n", string(make([]byte, 256))} {
		require.False(t, ValidUnit(bad), "%q", bad)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte(`{"MESSAGE":"x","__CURSOR":"c","_PID":"1"}`))
	f.Add([]byte(`{"MESSAGE":[1,2,255],"__CURSOR":"c"}`))
	f.Add([]byte(`{"MESSAGE":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err == nil && e.Message == nil {
			t.Fatalf("no error but no message for %q", b)
		}
	})
}

// BenchmarkDecodeEntry decodes an entry as journalctl prints it with the
// reader's --output-fields.
func BenchmarkDecodeEntry(b *testing.B) {
	line := []byte(`{"__CURSOR":"s=d959053a936149218c103b76428e12b1;i=32b;b=154781e3ec894b65bb8e9d84d73e2070;m=9fa44a27;t=66199ddac07e9;x=5d39f3bf1f2f05be","__REALTIME_TIMESTAMP":"1796163337193449","__MONOTONIC_TIMESTAMP":"2678344231","_BOOT_ID":"154781e3ec894b65bb8e9d84d73e2070","MESSAGE":"127.0.0.1 - - [01/Dec/2026:22:15:37 +0000] \"GET /users/42 HTTP/1.1\" 200 2 \"-\" \"curl/7.88.1\" 1500","_PID":"25661","_SYSTEMD_INVOCATION_ID":"0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := DecodeEntry(line); err != nil {
			b.Fatal(err)
		}
	}
}
