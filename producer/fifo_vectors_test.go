package producer

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
)

// The FIFO group and deduplication IDs of testdata/fifo-ids.json, which the
// TypeScript producer's tests (producer-ts/test) check too, so that
// producers in both languages put an entitlement's events in one message
// group. Regenerate after a deliberate change with
//
//	go test ./producer -run FIFOIDVectors -update-vectors
const fifoVectorsFile = "testdata/fifo-ids.json"

var updateFIFOVectors = flag.Bool("update-vectors", false, "rewrite the expectations in "+fifoVectorsFile+" from this implementation")

type fifoVectors struct {
	Comment []string        `json:"comment"`
	Groups  []groupIDVector `json:"groups"`
	IDs     []fifoIDVector  `json:"ids"`
}

type groupIDVector struct {
	UserID         string `json:"userId,omitempty"`
	PoolID         string `json:"poolId,omitempty"` // a pool's own events: PoolGroupID
	EntitlementKey string `json:"entitlementKey"`
	GroupID        string `json:"groupId"`
}

type fifoIDVector struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

func TestFIFOIDVectors(t *testing.T) {
	data, err := os.ReadFile(fifoVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f fifoVectors
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	for i, v := range f.Groups {
		got := GroupID(v.UserID, v.EntitlementKey)
		if v.PoolID != "" {
			got = PoolGroupID(v.PoolID, v.EntitlementKey)
		}
		if *updateFIFOVectors {
			f.Groups[i].GroupID = got
		} else if got != v.GroupID {
			t.Errorf("the group of %q/%q/%q is %q, want %q", v.UserID, v.PoolID, v.EntitlementKey, got, v.GroupID)
		}
	}
	for i, v := range f.IDs {
		got := FIFOID(v.In)
		if *updateFIFOVectors {
			f.IDs[i].Out = got
		} else if got != v.Out {
			t.Errorf("FIFOID(%q) = %q, want %q", v.In, got, v.Out)
		}
	}
	if !*updateFIFOVectors {
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fifoVectorsFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The file covers what the derivation distinguishes.
func TestFIFOIDVectorsCoverTheRules(t *testing.T) {
	data, err := os.ReadFile(fifoVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f fifoVectors
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var kept, hashed int
	for _, v := range append(append([]fifoIDVector{}, f.IDs...), groupsAsIDs(f.Groups)...) {
		if strings.HasPrefix(v.Out, "sha256:") {
			hashed++
		} else {
			kept++
		}
	}
	if kept < 3 || hashed < 3 || len(f.Groups) < 5 {
		t.Errorf("the vectors keep %d IDs and hash %d, in %d groups: too few", kept, hashed, len(f.Groups))
	}
}

func groupsAsIDs(gs []groupIDVector) []fifoIDVector {
	out := make([]fifoIDVector, len(gs))
	for i, g := range gs {
		out[i] = fifoIDVector{Out: g.GroupID}
	}
	return out
}
