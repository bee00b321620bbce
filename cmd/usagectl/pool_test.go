package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestUsagectlPools puts a pool and its members, shows the pool, and
// checks that usage and balance show a member's cap and its pool.
func TestUsagectlPools(t *testing.T) {
	c := build(t)
	s := newStack(t, c)
	current := monthStart(0)

	for _, args := range [][]string{{"pool", "put", "--help"}, {"pool", "show", "--help"}, {"pool", "--help"}} {
		if r := s.run(t, "", args...); r.code != 0 || !strings.Contains(r.stdout, "usage") || r.stderr != "" {
			t.Errorf("usagectl %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if r := s.must(t, "pool", "show", "--help"); !strings.Contains(r.stdout, "Scan") {
		t.Errorf("pool show --help does not say that it scans:\n%s", r.stdout)
	}

	put := decodeJSON[putJSON](t, s.must(t, "pool", "put", "--pool", "team-1", "--key", "api-calls", "--limit", "100", "--used", "7",
		"--reset-period", "MONTHLY", "--period-start", current, "--overage-limit", "20", "--rollover-max", "30", "--json").stdout)
	if put.PoolID != "team-1" || put.UserID != "" || put.Limit == nil || put.Limit.String() != "100" || put.ResetPeriod != "MONTHLY" ||
		put.OverageLimit == nil || put.OverageLimit.String() != "20" || put.RolloverMax == nil || put.RolloverMax.String() != "30" {
		t.Errorf("pool put --json: %+v", put)
	}
	member := decodeJSON[putJSON](t, s.must(t, "entitlement", "put", "--user", "u-1", "--key", "api-calls", "--limit", "10", "--used", "4",
		"--reset-period", "MONTHLY", "--period-start", current, "--pool", "team-1", "--json").stdout)
	if member.Pool != "team-1" || member.UserID != "u-1" || member.PoolID != "" {
		t.Errorf("entitlement put --pool --json: %+v", member)
	}
	if r := s.must(t, "entitlement", "put", "--user", "u-2", "--key", "api-calls", "--used", "3", "--pool", "team-1"); !strings.Contains(r.stdout, "a member of pool team-1") {
		t.Errorf("entitlement put --pool: %q", r.stdout)
	}
	// Not members of team-1's api-calls: no pool, another pool, another key.
	s.must(t, "entitlement", "put", "--user", "u-3", "--key", "api-calls", "--limit", "5", "--used", "1")
	s.must(t, "entitlement", "put", "--user", "u-4", "--key", "api-calls", "--pool", "team-2")
	s.must(t, "entitlement", "put", "--user", "u-5", "--key", "exports", "--pool", "team-1")

	t.Run("pool show", func(t *testing.T) {
		v := decodeJSON[poolShowView](t, s.must(t, "pool", "show", "--pool", "team-1", "--key", "api-calls", "--json").stdout)
		if v.Pool == nil || v.Pool.Limit == nil || v.Pool.Limit.String() != "100" || v.Pool.Used != "7" || v.Pool.UsedNow != "7" ||
			v.Pool.ResetPeriod != "MONTHLY" || v.Pool.CurrentPeriodStart == nil || *v.Pool.CurrentPeriodStart != current {
			t.Errorf("pool show --json: pool %+v", v.Pool)
		}
		if len(v.Members) != 2 || v.Members[0].UserID != "u-1" || v.Members[0].Cap == nil || v.Members[0].Cap.String() != "10" ||
			v.Members[0].UsedNow != "4" || v.Members[1].UserID != "u-2" || v.Members[1].Cap != nil || v.Members[1].UsedNow != "3" {
			t.Errorf("pool show --json: members %+v", v.Members)
		}
		human := s.must(t, "pool", "show", "--pool", "team-1", "--key", "api-calls").stdout
		for _, want := range []string{"pool team-1, at ", "limit            100", "used now         7", "remaining        93",
			"members (2, found by scanning the table)"} {
			if !strings.Contains(human, want) {
				t.Errorf("human pool show lacks %q:\n%s", want, human)
			}
		}
		for _, re := range []string{`(?m)^  USER\s+CAP\s+USED$`, `(?m)^  u-1\s+10\s+4$`, `(?m)^  u-2\s+none\s+3$`} {
			if !regexp.MustCompile(re).MatchString(human) {
				t.Errorf("human pool show does not match %s:\n%s", re, human)
			}
		}
		if strings.Contains(human, "u-3") || strings.Contains(human, "u-4") || strings.Contains(human, "u-5") {
			t.Errorf("pool show lists a non-member:\n%s", human)
		}
		r := s.run(t, "", "pool", "show", "--pool", "team-2", "--key", "api-calls")
		if r.code != 1 || !strings.Contains(r.stderr, `pool "team-2" has no entitlement "api-calls"`) ||
			!strings.Contains(r.stdout, "POOL_NOT_FOUND") || !regexp.MustCompile(`(?m)^  u-4\s+none\s+0$`).MatchString(r.stdout) {
			t.Errorf("pool show of a missing pool: exit %d, stdout %q, stderr %q; want 1 and its member", r.code, r.stdout, r.stderr)
		}
		if r := s.run(t, "", "pool", "show", "--pool", "team-1"); r.code != 2 {
			t.Errorf("pool show without --key: exit %d, want 2", r.code)
		}
	})

	t.Run("usage shows the pool", func(t *testing.T) {
		v := decodeJSON[usageView](t, s.must(t, "usage", "--user", "u-1", "--key", "api-calls", "--json").stdout)
		if len(v.Entitlements) != 1 {
			t.Fatalf("usage: %+v", v)
		}
		p := v.Entitlements[0].Pool
		if p == nil || p.ID != "team-1" || p.Cap == nil || p.Cap.String() != "10" || !p.Exists || p.Limit == nil || p.Limit.String() != "100" ||
			p.UsedNow == nil || p.UsedNow.String() != "7" || p.Remaining == nil || p.Remaining.String() != "93" {
			t.Errorf("usage --json pool: %+v", p)
		}
		human := s.must(t, "usage", "--user", "u-1", "--key", "api-calls").stdout
		for _, want := range []string{"limit            10\n", "pool             team-1 (cap 10: the member's own limit",
			"pool used now    7 of limit 100, remaining 93\n"} {
			if !strings.Contains(human, want) {
				t.Errorf("human usage lacks %q:\n%s", want, human)
			}
		}
		human = s.must(t, "usage", "--user", "u-2").stdout
		if !strings.Contains(human, "pool             team-1 (cap none: the member is limited by the pool alone)") {
			t.Errorf("human usage of a member without a cap:\n%s", human)
		}
		human = s.must(t, "usage", "--user", "u-4").stdout
		if !strings.Contains(human, "pool used now    unknown: pool team-2 has no entitlement api-calls (consumes are rejected POOL_NOT_FOUND)") {
			t.Errorf("human usage of a member of a missing pool:\n%s", human)
		}
		r := s.must(t, "usage", "--user", "u-3", "--json")
		if strings.Contains(r.stdout, `"pool"`) || regexp.MustCompile(`(?m)^  pool`).MatchString(s.must(t, "usage", "--user", "u-3").stdout) {
			t.Errorf("usage of an entitlement without a pool mentions one:\n%s", r.stdout)
		}
	})

	t.Run("balance shows the pool after a consume", func(t *testing.T) {
		s.consume(t, "u-1", "api-calls", map[string]string{"order-1": "2"})
		v := decodeJSON[balanceView](t, s.must(t, "balance", "--user", "u-1", "--key", "api-calls", "--json").stdout)
		if v.Used != "6" || v.Pool == nil || v.Pool.ID != "team-1" || v.Pool.UsedNow == nil || v.Pool.UsedNow.String() != "9" ||
			v.Pool.Remaining == nil || v.Pool.Remaining.String() != "91" {
			t.Errorf("balance --json of a member: %+v (pool %+v)", v, v.Pool)
		}
		human := s.must(t, "balance", "--user", "u-1", "--key", "api-calls").stdout
		for _, want := range []string{"used          6\n", "pool          team-1 (cap 10", "pool used now 9 of limit 100, remaining 91\n"} {
			if !strings.Contains(human, want) {
				t.Errorf("human balance lacks %q:\n%s", want, human)
			}
		}
		if r := s.must(t, "balance", "--user", "u-3", "--key", "api-calls", "--json"); strings.Contains(r.stdout, `"pool"`) {
			t.Errorf("balance without a pool mentions one:\n%s", r.stdout)
		}
		v2 := decodeJSON[poolShowView](t, s.must(t, "pool", "show", "--pool", "team-1", "--key", "api-calls", "--json").stdout)
		if v2.Pool == nil || v2.Pool.UsedNow != "9" || len(v2.Members) != 2 || v2.Members[0].UsedNow != "6" {
			t.Errorf("pool show after the consume: %+v, members %+v", v2.Pool, v2.Members)
		}
	})

	t.Run("a grant to the pool", func(t *testing.T) {
		r := s.must(t, "grant", "--pool", "team-1", "--key", "api-calls", "--grant", "extra", "--amount", "50")
		if !strings.Contains(r.stdout, "grant extra of 50") {
			t.Errorf("grant --pool: %q", r.stdout)
		}
		v := decodeJSON[poolShowView](t, s.must(t, "pool", "show", "--pool", "team-1", "--key", "api-calls", "--json").stdout)
		if v.Pool == nil || len(v.Pool.Grants) != 1 || v.Pool.Grants[0].GrantID != "extra" || v.Pool.Available == nil || v.Pool.Available.String() != "161" {
			t.Errorf("the pool after its grant: %+v", v.Pool)
		}
		if r := s.run(t, "", "grant", "--pool", "team-1", "--user", "u-1", "--key", "api-calls", "--grant", "g", "--amount", "1"); r.code != 2 ||
			!strings.Contains(r.stderr, "--user and --pool exclude each other") {
			t.Errorf("grant --pool --user: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := s.must(t, "void", "--pool", "team-1", "--key", "api-calls", "--grant", "extra"); !strings.Contains(r.stdout, "voided") {
			t.Errorf("void --pool: %q", r.stdout)
		}
	})

	t.Run("POOL_PK_PREFIX places the pool", func(t *testing.T) {
		team := s.with("POOL_PK_PREFIX=TEAM#")
		team.must(t, "pool", "put", "--pool", "team-9", "--key", "seats", "--limit", "3")
		if r := team.must(t, "pool", "show", "--pool", "team-9", "--key", "seats"); !strings.Contains(r.stdout, "limit            3") {
			t.Errorf("pool show with the same prefix:\n%s", r.stdout)
		}
		if r := s.run(t, "", "pool", "show", "--pool", "team-9", "--key", "seats"); r.code != 1 {
			t.Errorf("pool show with the default prefix: exit %d, want 1 (the pool is under TEAM#)\n%s", r.code, r.stdout)
		}
	})
}
