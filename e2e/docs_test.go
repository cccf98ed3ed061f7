//go:build e2e

package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snippetMarker precedes a fenced code block in the documentation that must
// be the exact content of a shipped file: <!-- snippet: deploy/... -->.
const snippetMarker = "<!-- snippet: "

// TestDocumentedSnippetsAreTheShippedFiles keeps the gateway documentation
// honest: every marked code block in README.md and deploy/README.md is the
// file the gateways above were tested with.
func TestDocumentedSnippetsAreTheShippedFiles(t *testing.T) {
	found := 0
	quoted := map[string]bool{} // "doc path" of every checked block
	for _, doc := range []string{"README.md", "deploy/README.md"} {
		f, err := os.Open(filepath.Join(repoRoot, doc))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
		for i := 0; i < len(lines); i++ {
			line := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(line, snippetMarker) {
				continue
			}
			path := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, snippetMarker), "-->"))
			// The next fence opens the block.
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[j]), "```") {
				j++
			}
			var block []string
			k := j + 1
			for k < len(lines) && !strings.HasPrefix(lines[k], "```") {
				block = append(block, lines[k])
				k++
			}
			if j >= len(lines) || k >= len(lines) {
				t.Errorf("%s:%d: no fenced block after the snippet marker for %s", doc, i+1, path)
				continue
			}
			want, err := os.ReadFile(filepath.Join(repoRoot, path))
			if err != nil {
				t.Errorf("%s:%d: %v", doc, i+1, err)
				continue
			}
			if got := strings.Join(block, "\n"); got != strings.TrimRight(string(want), "\n") {
				t.Errorf("%s:%d: the block differs from %s: copy the file into the documentation", doc, i+1, path)
			}
			found++
			quoted[doc+" "+path] = true
			i = k
		}
	}
	if found == 0 {
		t.Errorf("no snippet markers found in README.md or deploy/README.md")
	}
	for _, path := range readmeFiles {
		if !quoted["README.md "+path] {
			t.Errorf("README.md does not quote %s (with a snippet marker)", path)
		}
	}
}

// readmeFiles are the gateway files the e2e suite runs that README.md must
// quote.
var readmeFiles = []string{
	"deploy/nginx/forwardauth.conf",
	"deploy/nginx/snippets/forwardauth-authrequest.conf",
	"deploy/nginx/snippets/forwardauth-identity.conf",
	"deploy/traefik/dynamic.yml",
	"deploy/caddy/Caddyfile",
	"deploy/haproxy/haproxy.cfg",
	"deploy/haproxy/forwardauth.lua",
}
