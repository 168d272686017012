package domain

import (
	stderrors "errors"
	"testing"

	"github.com/cockroachdb/errors"
)

func TestValidationError(t *testing.T) {
	t.Parallel()
	err := error(&ValidationError{Fields: map[string]string{"lines[0].qty": "must be between 1 and 10000", "currency": "bad"}})
	if got, want := err.Error(), "validation failed: currency: bad; lines[0].qty: must be between 1 and 10000"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := errors.Wrapf(err, "place order")
	for name, is := range map[string]func(error, error) bool{"cockroachdb": errors.Is, "std": stderrors.Is} {
		if !is(wrapped, ErrValidation) {
			t.Errorf("%s errors.Is(wrapped, ErrValidation) = false", name)
		}
		for _, other := range []error{ErrNotFound, ErrConflict, ErrInvalidTransition} {
			if is(wrapped, other) {
				t.Errorf("%s errors.Is(validation, %v) = true", name, other)
			}
		}
	}
}

// The sentinels must stay distinct, or the HTTP table would map one kind
// to another's status.
func TestSentinelsAreDistinct(t *testing.T) {
	t.Parallel()
	all := []error{ErrNotFound, ErrInvalidTransition, ErrConflict, ErrValidation}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(errors.Wrapf(a, "x"), b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, i != j)
			}
		}
	}
}

func TestFieldErrorsKeepTheFirstMessage(t *testing.T) {
	t.Parallel()
	var fe fieldErrors
	if fe.err() != nil {
		t.Fatal("empty fieldErrors must give a nil error")
	}
	fe.add("sku", "first")
	fe.add("sku", "second")
	var ve *ValidationError
	if !errors.As(fe.err(), &ve) || ve.Fields["sku"] != "first" || !fe.has("sku") {
		t.Fatalf("got %v", fe.err())
	}
}
