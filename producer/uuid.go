package producer

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// NewUUIDv7 returns a new UUID version 7 (RFC 9562) in its canonical
// lower-case text form, e.g. "01932c07-a5b2-7c3e-9f1a-3b4c5d6e7f80".
//
// It is what WithAutoIdempotencyKeys assigns. Version 7 puts the Unix
// time in milliseconds first, so keys sort by creation time: the ledger
// and logs list them in the order they were made, which helps when
// reading an incident. Within one process the IDs are strictly
// increasing (RFC 9562 section 6.2, method 1: a 12-bit counter in rand_a
// seeded randomly each millisecond; when it would overflow, or when the
// clock steps back, the timestamp is advanced instead). The remaining 62
// bits come from crypto/rand, so IDs made by different processes do not
// collide.
func NewUUIDv7() string { return defaultUUIDs.next() }

var defaultUUIDs = &uuidV7{now: time.Now}

type uuidV7 struct {
	now func() time.Time

	mu     sync.Mutex
	lastMS int64
	seq    uint16 // 12 bits
}

func (g *uuidV7) next() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (it crashes the program instead)

	g.mu.Lock()
	ms := g.now().UnixMilli()
	if ms > g.lastMS {
		g.lastMS = ms
		// 11 random bits: the top bit of the 12 is left clear so the
		// counter has room to count up within the millisecond.
		g.seq = uint16(b[6]&0x07)<<8 | uint16(b[7])
	} else {
		g.seq++
		if g.seq > 0x0FFF {
			g.lastMS++
			g.seq = 0
		}
	}
	ms, seq := g.lastMS, g.seq
	g.mu.Unlock()

	b[0] = byte(ms >> 40)
	b[1] = byte(ms >> 32)
	b[2] = byte(ms >> 24)
	b[3] = byte(ms >> 16)
	b[4] = byte(ms >> 8)
	b[5] = byte(ms)
	b[6] = 0x70 | byte(seq>>8) // version 7
	b[7] = byte(seq)
	b[8] = b[8]&0x3F | 0x80 // variant 10 (RFC 9562)
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
