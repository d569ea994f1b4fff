package sellerclient

import (
	"errors"
	"net/http"
)

// NewGuardedTransport returns the transport the Client uses by default:
// tuned keep-alive pools, no proxy and, unless allowPrivate, a dialer that
// refuses loopback, private and link-local addresses after DNS resolution
// (so DNS rebinding cannot reach them). Other seller clients (the AdCP
// client) share it so every seller connection has the same guard.
func NewGuardedTransport(allowPrivate bool) *http.Transport { return newTransport(allowPrivate) }

// CheckSellerURL canonicalises raw (CanonicalURL) and, unless allowPrivate,
// refuses literal private, loopback and link-local hosts. Errors wrap
// ErrInvalidURL.
func CheckSellerURL(raw string, allowPrivate bool) (string, error) {
	c := &Client{cfg: Config{AllowPrivate: allowPrivate}}
	return c.checkTarget(raw)
}

// IsPrivateDial reports whether err comes from the guarded dialer refusing a
// private address.
func IsPrivateDial(err error) bool { return err != nil && errors.Is(err, errPrivateDial) }
