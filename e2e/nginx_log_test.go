//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped nginx access log names the signed-in user, "-" for nobody.
func TestNginxAccessLogNamesTheUser(t *testing.T) {
	st := newStack(t)
	dir := t.TempDir()
	base := startNginxIn(t, st, dir)
	allowed(t, st, do(t, base, "GET", "/logged/in", "", bearer(tokenAlice)...))
	blocked(t, st, do(t, base, "GET", "/logged/out", "", "Accept", acceptJSON), 401)

	// nginx writes a request's line in its log phase, which may come after
	// the client has its answer: wait (generously) for both lines.
	var in, out string
	for deadline := time.Now().Add(15 * time.Second); (in == "" || out == "") && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		for line := range strings.Lines(string(b)) {
			switch {
			case strings.Contains(line, "/logged/in"):
				in = line
			case strings.Contains(line, "/logged/out"):
				out = line
			}
		}
	}
	if !strings.Contains(in, " - "+userAlice.UserID+" [") {
		t.Errorf("signed-in request logged as %q, want the user id %s", in, userAlice.UserID)
	}
	if !strings.Contains(out, " - - [") {
		t.Errorf("anonymous request logged as %q, want - for the user", out)
	}
}
