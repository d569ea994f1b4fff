package negotiator_test

// must returns v, panicking (which fails the test) when test setup that
// cannot fail in a healthy test environment does.
func must[T any](v T, err error) T {
	if err != nil {
		panic("test setup: " + err.Error())
	}
	return v
}
