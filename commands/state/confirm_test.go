package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConfirmations: a confirmation is kept across a reopen and read
// without being used; taking it returns it once; expired ones are
// dropped by the next write, and past the bound those that expire first.
func TestConfirmations(t *testing.T) { contract(t, testConfirmations) }

func testConfirmations(t *testing.T, loc string) {
	ctx := context.Background()
	s, err := openAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	c := Confirmation{Token: "abcd2345", Identity: "irc:alice", Place: "#ops", Transport: "irc",
		Command: "cleanup bvm1 --older 1d", Digest: "d1", Expires: now.Add(5 * time.Minute), Created: now}
	if err := s.AddConfirmation(ctx, c, now, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AddConfirmation(ctx, c, now, 10); err == nil {
		t.Fatal("a token kept already was kept again")
	}
	s.Close()
	if s, err = openAt(ctx, loc); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 { // reading uses nothing
		got, ok, err := s.Confirmation(ctx, c.Token)
		if err != nil || !ok || got != c {
			t.Fatalf("Confirmation = %+v, %v, %v; want %+v", got, ok, err, c)
		}
	}
	if _, ok, err := s.Confirmation(ctx, "nosuchtk"); ok || err != nil {
		t.Fatalf("an unknown token: %v, %v", ok, err)
	}
	got, ok, err := s.TakeConfirmation(ctx, c.Token)
	if err != nil || !ok || got != c {
		t.Fatalf("TakeConfirmation = %+v, %v, %v; want %+v", got, ok, err, c)
	}
	if _, ok, err := s.TakeConfirmation(ctx, c.Token); ok || err != nil {
		t.Fatalf("taken twice: %v, %v", ok, err)
	}
	if _, ok, _ := s.Confirmation(ctx, c.Token); ok {
		t.Fatal("a taken confirmation is still kept")
	}

	// Expired ones go at the next write; past the bound, the ones that
	// expire first.
	for i := range 4 {
		e := c
		e.Token, e.Expires = fmt.Sprintf("tok%d", i), now.Add(time.Duration(i)*time.Minute)
		if err := s.AddConfirmation(ctx, e, now, 3); err != nil {
			t.Fatal(err)
		}
	}
	var kept []string
	for i := range 4 {
		if _, ok, _ := s.Confirmation(ctx, fmt.Sprintf("tok%d", i)); ok {
			kept = append(kept, fmt.Sprintf("tok%d", i))
		}
	}
	if strings.Join(kept, ",") != "tok1,tok2,tok3" {
		t.Fatalf("kept %v past the bound of 3, want tok1,tok2,tok3", kept)
	}
	e := c
	e.Token, e.Expires = "late", now.Add(time.Hour)
	if err := s.AddConfirmation(ctx, e, now.Add(150*time.Second), 3); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]bool{"tok1": false, "tok2": false, "tok3": true, "late": true} {
		if _, ok, _ := s.Confirmation(ctx, tok); ok != want {
			t.Errorf("%s kept = %v after expiry, want %v", tok, ok, want)
		}
	}
}

// TestConfirmationRace: many processes (stores) and goroutines confirming
// the same token at once: exactly one takes it.
func TestConfirmationRace(t *testing.T) { contract(t, testConfirmationRace) }

func testConfirmationRace(t *testing.T, loc string) {
	ctx := context.Background()
	const stores, each = 4, 4
	var all []*Store
	for range stores {
		s, err := openAt(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		all = append(all, s)
	}
	for round := range 5 {
		tok := fmt.Sprintf("race%d", round)
		now := time.Now()
		if err := all[0].AddConfirmation(ctx, Confirmation{Token: tok, Identity: "irc:alice", Command: "reboot bvm1",
			Expires: now.Add(time.Minute), Created: now}, now, 0); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		start := make(chan struct{})
		for _, s := range all {
			for range each {
				wg.Go(func() {
					<-start
					_, ok, err := s.TakeConfirmation(ctx, tok)
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						won++
						mu.Unlock()
					}
				})
			}
		}
		close(start)
		wg.Wait()
		if won != 1 {
			t.Fatalf("round %d: %d of %d callers took the token, want exactly 1", round, won, stores*each)
		}
	}
}

// TestConfirmationFenced: a store bound to a leader whose term ended
// takes no confirmation; the new leader's does.
func TestConfirmationFenced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc := pgOnly(t)
	a, b := open(t, loc), open(t, loc)
	defer a.Close()
	defer b.Close()
	la := leadSoon(t, ctx, a, "a")
	defer la.Resign()
	now := time.Now()
	if err := a.AddConfirmation(ctx, Confirmation{Token: "fenced12", Identity: "irc:alice", Expires: now.Add(time.Minute), Created: now}, now, 0); err != nil {
		t.Fatal(err)
	}
	cutLeader(t, ctx, la)
	lb := leadSoon(t, ctx, b, "b")
	defer lb.Resign()
	if _, ok, err := a.TakeConfirmation(ctx, "fenced12"); ok || !errors.Is(err, ErrFenced) {
		t.Fatalf("the old leader took the confirmation: %v, %v", ok, err)
	}
	if _, ok, err := b.TakeConfirmation(ctx, "fenced12"); !ok || err != nil {
		t.Fatalf("the new leader did not take it: %v, %v", ok, err)
	}
}

// TestDrafts: drafts get ids from a sequence that never repeats, are
// found by id and token and listed newest first by another process and
// after a reopen, and past the bound the oldest go.
func TestDrafts(t *testing.T) { contract(t, testDrafts) }

func testDrafts(t *testing.T, loc string) {
	ctx := context.Background()
	s, err := openAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	other, err := openAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	t0 := time.Unix(1_800_000_000, 0)
	var ids []int64
	for i := range 4 {
		w := s
		if i%2 == 1 {
			w = other
		}
		id, err := w.NewDraft(ctx, fmt.Sprintf("token%d", i), t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf(`{"n":%d}`, i), 3)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids %v do not go up", ids)
		}
	}
	if _, err := s.NewDraft(ctx, "token3", t0, "{}", 3); err == nil {
		t.Fatal("a token kept already was kept again")
	}
	s.Close()
	if s, err = openAt(ctx, loc); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := other.Drafts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range list {
		got = append(got, d.Token+"="+d.Payload)
	}
	if strings.Join(got, " ") != `token3={"n":3} token2={"n":2} token1={"n":1}` {
		t.Fatalf("drafts = %v, want the newest 3, newest first", got)
	}
	d, ok, err := s.Draft(ctx, ids[2])
	if err != nil || !ok || d.Token != "token2" || !d.Created.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("Draft(%d) = %+v, %v, %v", ids[2], d, ok, err)
	}
	if _, ok, _ := s.Draft(ctx, ids[0]); ok {
		t.Fatal("the oldest draft is still kept past the bound")
	}
	if d, ok, err := s.DraftByToken(ctx, "token1"); err != nil || !ok || d.ID != ids[1] {
		t.Fatalf("DraftByToken = %+v, %v, %v", d, ok, err)
	}
	for _, tok := range []string{"", "TOKEN1", "token0"} {
		if _, ok, _ := s.DraftByToken(ctx, tok); ok {
			t.Errorf("DraftByToken(%q) found a draft", tok)
		}
	}
	// A new draft after the others were dropped never takes an old id.
	id, err := s.NewDraft(ctx, "token4", t0, "{}", 3)
	if err != nil || id <= ids[3] {
		t.Fatalf("next id %d (%v), want above %d", id, err, ids[3])
	}
}
