package tracing

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// xrayIDs makes trace IDs whose first 4 bytes are the Unix time in
// seconds, as X-Ray's own are (the Root "1-<8 hex: time>-<24 hex>"), so
// that X-Ray takes the service's traces whatever its support of random
// W3C IDs; they are valid W3C trace IDs too. Span IDs are random.
type xrayIDs struct{}

func (xrayIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	binary.BigEndian.PutUint32(tid[:4], uint32(time.Now().Unix()))
	crand.Read(tid[4:])
	return tid, xrayIDs{}.NewSpanID(ctx, tid)
}

func (xrayIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		crand.Read(sid[:])
	}
	return sid
}
