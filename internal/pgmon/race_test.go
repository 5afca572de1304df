//go:build race

package pgmon

const raceEnabled = true
