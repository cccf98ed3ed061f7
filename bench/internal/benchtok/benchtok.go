// Package benchtok numbers the bench tools' tokens in the shape Authgear
// issues (32 characters of [A-Za-z0-9]), so that the service's shape check
// lets them through: a prefix of letters, then the number, zero-padded.
// bench/wrk/report.lua writes the same ("%s%0<n>d").
package benchtok

import (
	"fmt"
	"strconv"
	"strings"
)

// Len is the length of every token: Authgear's opaque tokens.
const Len = 32

// Token is token number n of prefix, e.g. Token("tok", 7) =
// "tok00000000000000000000000000007".
func Token(prefix string, n int64) string {
	return fmt.Sprintf("%s%0*d", prefix, Len-len(prefix), n)
}

// Number reads back the number of a token of prefix.
func Number(prefix, token string) (int64, bool) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(token) != Len {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n >= 0
}
