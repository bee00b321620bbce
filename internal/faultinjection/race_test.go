//go:build race

package faultinjection_test

// raceEnabled: the test binary runs with the race detector, so the worker
// binary it builds gets it too.
const raceEnabled = true
