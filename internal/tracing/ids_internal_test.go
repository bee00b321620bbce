package tracing

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

func TestTraceIDsStartWithTheTimeAsXRaysDo(t *testing.T) {
	before := uint32(time.Now().Unix())
	tid, sid := xrayIDs{}.NewIDs(context.Background())
	after := uint32(time.Now().Unix())
	if at := binary.BigEndian.Uint32(tid[:4]); at < before || at > after || !tid.IsValid() || !sid.IsValid() {
		t.Errorf("trace ID %v span ID %v: want the Unix time %d..%d first", tid, sid, before, after)
	}
	if other, _ := (xrayIDs{}).NewIDs(context.Background()); other == tid {
		t.Error("two trace IDs alike")
	}
}
