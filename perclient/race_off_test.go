//go:build !race

package perclient

const raceEnabled = false
