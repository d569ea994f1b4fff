package sellerclient

import (
	"errors"
	"net/http"
	"time"
)

// CheckDestination canonicalises raw (CanonicalURL) and, unless
// allowPrivate, refuses a URL whose host is literally loopback, private,
// link-local or otherwise internal, with the same rules as seller URLs. It
// is for URLs dealflow will call that come from a user, such as a campaign's
// webhook. Errors wrap ErrInvalidURL. Names resolving to private addresses
// are refused later, at dial time, by GuardedHTTPClient.
func CheckDestination(raw string, allowPrivate bool) (string, error) {
	return (&Client{cfg: Config{AllowPrivate: allowPrivate}}).checkTarget(raw)
}

// GuardedHTTPClient returns an HTTP client for user-supplied destinations:
// its dialer refuses private addresses after DNS (unless allowPrivate), it
// uses no proxy (which would hide the real destination) and it follows no
// redirect (the caller sees the 3xx). timeout bounds each request.
func GuardedHTTPClient(allowPrivate bool, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: newTransport(allowPrivate),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// IsPrivateDialError reports whether err is GuardedHTTPClient refusing a
// private destination.
func IsPrivateDialError(err error) bool { return err != nil && errors.Is(err, errPrivateDial) }

// NewGuardedTransport returns the seller client's HTTP transport, which
// refuses loopback, private and link-local addresses after DNS resolution
// (so DNS rebinding cannot reach them) unless allowPrivate. Other seller
// clients (the AdCP client) share it so every seller connection has the
// same guard.
func NewGuardedTransport(allowPrivate bool) *http.Transport { return newTransport(allowPrivate) }
