package sellerclient

import (
	"errors"
	"testing"
)

func TestMember(t *testing.T) {
	for _, c := range []struct {
		in, key, want string
		found         bool
		err           bool
	}{
		{`{"a":1,"b":[1,{"a":2}],"c":"x"}`, "b", `[1,{"a":2}]`, true, false},
		{`{"s":"}\"{","k":true}`, "k", `true`, true, false}, // braces and quotes inside a string
		{`{"k":1,"k":2}`, "k", `2`, true, false},            // the last one, as a map decoding keeps
		{`{"K":1}`, "k", ``, false, false},                  // exact key
		{`{"\u006b":{"x":null}}`, "k", `{"x":null}`, true, false},
		{` { } `, "k", ``, false, false},
		{`{"k" 1}`, "k", ``, false, true},
		{`{"k":1`, "k", `1`, true, true},
		{`[1]`, "k", ``, false, true},
		{``, "k", ``, false, true},
	} {
		v, found, err := member([]byte(c.in), c.key)
		if string(v) != c.want || found != c.found || (err != nil) != c.err {
			t.Errorf("member(%s, %q) = %s, %v, %v; want %s, %v, error %v", c.in, c.key, v, found, err, c.want, c.found, c.err)
		}
	}
}

func TestEachElement(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  bool
	}{
		{`[1, "a,]", {"b":[2]}, null]`, []string{`1`, `"a,]"`, `{"b":[2]}`, `null`}, false},
		{`[]`, nil, false},
		{`[1,]`, []string{`1`}, true},
		{`[1 2]`, []string{`1`}, true},
		{`[{"a":1}`, []string{`{"a":1}`}, true},
		{`{}`, nil, true},
	} {
		var got []string
		err := eachElement([]byte(c.in), func(v []byte) error { got = append(got, string(v)); return nil })
		if (err != nil) != c.err || len(got) != len(c.want) {
			t.Errorf("eachElement(%s) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.err)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("eachElement(%s) element %d = %s, want %s", c.in, i, got[i], c.want[i])
			}
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := eachElement([]byte(`[1,2,3]`), func([]byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("the callback's error did not stop the walk: %v after %d", err, n)
	}
}

// TestSkipString: the index just past a string, with and without escapes,
// and the end of the input for an unterminated one.
func TestSkipString(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`"abc",`, 5},
		{`""x`, 2},
		{`"a\"b"x`, 6},
		{`"a\\"x`, 5},
		{`"a\\\"b"x`, 8},
		{`"\u0022"x`, 8},
		{`"long string without any escape at all, longer than a word",1`, 59},
		{`"unterminated`, 13},
		{`"ends in a backslash\`, 21},
		{`"a\"`, 4},
	} {
		if got := skipString([]byte(c.in), 0); got != c.want {
			t.Errorf("skipString(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
