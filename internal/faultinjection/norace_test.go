//go:build !race

package faultinjection_test

const raceEnabled = false
