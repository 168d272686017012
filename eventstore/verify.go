package eventstore

import (
	"context"
	"fmt"
	"strings"
)

// Kinds of Problem that VerifyChains reports.
const (
	// ProblemGap: an event's version skips ahead of the one expected, so
	// at least one event before it is missing (deleted).
	ProblemGap = "gap"
	// ProblemForged: an event's hash does not match its content, its
	// prev_hash does not name the hash of the event before it, or it claims
	// another aggregate than its subject's.
	ProblemForged = "forged"
	// ProblemOutOfPlace: an event's version repeats or goes back.
	ProblemOutOfPlace = "out_of_place"
	// ProblemUndecodable: a message on an event subject is not an envelope.
	ProblemUndecodable = "undecodable"
)

// MaxProblems bounds the problems a VerifyReport lists, so that verifying a
// badly damaged store still takes memory in proportion to its aggregates;
// the others are only counted in ProblemsOmitted.
const MaxProblems = 1000

// Problem is one place where an aggregate's hash chain breaks.
type Problem struct {
	Subject     string `json:"subject"`
	AggregateID string `json:"aggregate_id"`
	// Seq is the stream sequence of the event where the chain breaks: for
	// a deleted event, the first one after it.
	Seq uint64 `json:"seq"`
	// Version is the event's own version (0 when undecodable) and
	// ExpectedVersion the one that should have come there.
	Version         uint64 `json:"version"`
	ExpectedVersion uint64 `json:"expected_version"`
	Kind            string `json:"kind"`
	Detail          string `json:"detail"`
}

// VerifyReport is the outcome of VerifyChains. Problems is never nil.
type VerifyReport struct {
	OK              bool      `json:"ok"`
	EventsChecked   uint64    `json:"events_checked"`
	Aggregates      int       `json:"aggregates"`
	Problems        []Problem `json:"problems"`
	ProblemsOmitted uint64    `json:"problems_omitted,omitempty"`
}

// chainTip is what verification keeps per aggregate: the last event that
// was accepted into its chain.
type chainTip struct {
	version uint64
	hash    string
}

// VerifyChains reads every event of the store once, in store order, and
// checks each aggregate's hash chain: versions 1, 2, 3… with every
// prev_hash naming the hash of the event before and every hash matching its
// event's content. It keeps only the tip of each chain, so memory grows
// with the number of aggregates, not of events. progress, when not nil, is
// called with the number of events checked so far, after every event.
//
// A broken chain is a Problem in the report, not an error; the error is for
// a store that cannot be read (domain.ErrUnavailable when JetStream does not
// answer) or a canceled ctx. What a chain without a secret cannot show: a
// deleted last event, or a forged event appended with a correct version
// and prev_hash and a hash computed over its own content.
func (s *Store) VerifyChains(ctx context.Context, progress func(done uint64)) (VerifyReport, error) {
	rep := VerifyReport{Problems: []Problem{}}
	tips := make(map[string]chainTip)
	report := func(p Problem) {
		if len(rep.Problems) < MaxProblems {
			rep.Problems = append(rep.Problems, p)
		} else {
			rep.ProblemsOmitted++
		}
	}
	// Shard by shard: a chain lives on one shard, so no merge is needed.
	var err error
	for _, sh := range s.shards {
		if err = s.verifyShard(ctx, sh, tips, &rep, report, progress); err != nil {
			break
		}
	}
	if err != nil {
		return VerifyReport{}, err
	}
	rep.Aggregates = len(tips)
	rep.OK = len(rep.Problems) == 0 && rep.ProblemsOmitted == 0
	return rep, nil
}

// verifyShard checks the chains of shard sh into rep.
func (s *Store) verifyShard(ctx context.Context, sh *shard, tips map[string]chainTip, rep *VerifyReport, report func(Problem), progress func(uint64)) error {
	return s.readSubject(ctx, sh, ">", 1, 0, func(m RawMsg) error {
		if !IsEventSubject(m.Subject) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.EventsChecked++
		if progress != nil {
			defer progress(rep.EventsChecked)
		}
		tip, seen := tips[m.Subject]
		if !seen {
			tips[m.Subject] = chainTip{}
		}
		id := m.Subject[strings.IndexByte(m.Subject, '.')+1:]
		p := Problem{Subject: m.Subject, AggregateID: id, Seq: m.Seq, ExpectedVersion: tip.version + 1}
		e, err := DecodeEnvelope(m.Data)
		if err != nil {
			p.Kind, p.Detail = ProblemUndecodable, err.Error()
			report(p)
			return nil
		}
		p.Version = e.Version
		if next, ok := checkEvent(&p, tip, &e); ok {
			tips[m.Subject] = next
		} else {
			report(p)
			if p.Kind == ProblemGap {
				// Carry on from this event so that one deletion is one problem.
				tips[m.Subject] = next
			}
		}
		return nil
	})
}

// checkEvent checks e against the tip of its chain. It returns the new tip
// and true when e links, or fills p's Kind and Detail.
func checkEvent(p *Problem, tip chainTip, e *Envelope) (chainTip, bool) {
	next := chainTip{version: e.Version, hash: e.Hash}
	switch {
	case e.AggregateID != p.AggregateID:
		p.Kind, p.Detail = ProblemForged, fmt.Sprintf("aggregate_id %q on the subject of %q", e.AggregateID, p.AggregateID)
	case e.ComputeHash() != e.Hash:
		p.Kind, p.Detail = ProblemForged, fmt.Sprintf("hash of version %d does not match its content", e.Version)
	case e.Version <= tip.version:
		p.Kind, p.Detail = ProblemOutOfPlace, fmt.Sprintf("version %d after version %d", e.Version, tip.version)
	case e.Version > tip.version+1:
		p.Kind = ProblemGap
		p.Detail = fmt.Sprintf("version %d where %d was expected: %d event(s) missing", e.Version, tip.version+1, e.Version-tip.version-1)
	case e.PrevHash != tip.hash:
		p.Kind, p.Detail = ProblemForged, fmt.Sprintf("prev_hash of version %d does not match the hash of version %d", e.Version, tip.version)
	default:
		return next, true
	}
	return next, false
}
