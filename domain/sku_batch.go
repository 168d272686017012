package domain

// DecideSKUBatch decides cmds one after another, each against the state
// left by the previous ones, copying each written part of the held set
// once rather than once per event: this is how a processor drains a hot
// SKU's requests.
//
// errs has one entry per command: errs[i] is what DecideSKU returned for
// cmds[i] (nil on success, see DecideSKU for the kinds); a failed
// command's events are none and the others go on. after and events equal
// folding DecideSKU and EvolveSKU over cmds one by one; events are in
// command order. s itself, including its held set, is never modified.
func DecideSKUBatch(s SKU, cmds []SKUCommand) (after SKU, events []SKUEvent, errs []error) {
	f := skuFold{s: s}
	errs = make([]error, len(cmds))
	for i, c := range cmds {
		evs, err := DecideSKU(f.s, c)
		if err != nil {
			errs[i] = err
			continue
		}
		for _, e := range evs {
			f.apply(e)
		}
		events = append(events, evs...)
	}
	return f.s, events, errs
}

// EvolveSKUAll folds events into s, copying the held set's parts once; it
// equals folding EvolveSKU over events and, like it, never modifies s. It
// panics as EvolveSKU does for a value outside the closed event set.
func EvolveSKUAll(s SKU, events []SKUEvent) SKU {
	f := skuFold{s: s}
	for _, e := range events {
		f.apply(e)
	}
	return f.s
}
