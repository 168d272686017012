package pglocal

// SetBinGlob points the search for versioned bin directories at glob, so a
// test can pretend PostgreSQL is not installed, and returns the undo.
func SetBinGlob(glob string) (restore func()) {
	old := debianBinGlob
	debianBinGlob = glob
	return func() { debianBinGlob = old }
}
