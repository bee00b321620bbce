package demo

import (
	"encoding/json"
	"testing"
)

// TestUsedText: the USED column of each type, from the published JSON.
func TestUsedText(t *testing.T) {
	for body, want := range map[string]string{
		`{"type":"usage.threshold.reached","thresholdPercent":80,"limit":100,"used":81}`:  "81 of 100",
		`{"type":"usage.limit.rejected","amount":2,"limit":100,"used":99}`:                "99 of 100, asked 2",
		`{"type":"usage.overage.started","overageUsed":0.25,"limit":100,"used":100}`:      "100 of 100, 0.25 into the overage",
		`{"type":"usage.overage.started","overageUsed":1E-36,"limit":1E+30,"used":1E+30}`: "1E+30 of 1E+30, 1E-36 into the overage",
	} {
		var n notification
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			t.Fatal(err)
		}
		if got := usedText(n); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
		if got := threshold(n); (n.ThresholdPercent == nil) != (got == "-") {
			t.Errorf("%s: threshold %q", body, got)
		}
	}
}
