package sandbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/pkg/identity"
)

// startAtFreeBase starts the default market from a base port, retrying on
// another base when some port of the range is taken.
func startAtFreeBase(t *testing.T, seed string) (*Market, int) {
	t.Helper()
	var last error
	for range 10 {
		base, err := FreeBasePort(16)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Start(context.Background(), DefaultMarket(), WithBasePort(base), WithSeed(seed))
		if err == nil {
			return m, base
		}
		last = err
	}
	t.Fatalf("no free port range: %v", last)
	return nil, 0
}

// TestBasePortSeedAndCredentialsFile: the registry listens on the base port
// and the sellers on the ports after it; the same seed gives the same keys
// on a restart, another seed other keys; the credentials file holds every
// seller's keys in the format --credentials reads.
func TestBasePortSeedAndCredentialsFile(t *testing.T) {
	m, base := startAtFreeBase(t, "s1")
	if want := fmt.Sprintf("http://127.0.0.1:%d", base); m.RegistryURL != want {
		t.Fatalf("registry %s, want %s", m.RegistryURL, want)
	}
	keys := map[string]map[string]string{}
	for i, s := range m.Sellers {
		if want := fmt.Sprintf("http://127.0.0.1:%d", base+1+i); s.URL != want {
			t.Fatalf("seller %d %s at %s, want %s", i, s.Name, s.URL, want)
		}
		keys[s.Name] = s.Keys
	}
	creds, err := identity.ParseCredentials(m.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Sellers {
		for tier, key := range s.Keys {
			tr, _ := identity.ParseTier(tier)
			if got, ok := creds.Key(s.URL, tr); !ok || got != key {
				t.Fatalf("credentials file: %s %s key differs", s.Name, tier)
			}
		}
	}
	token := m.AAMPToken
	m.Close()

	// The listeners close asynchronously: give the ports a moment.
	var again *Market
	checkfor.Check(t, 5*time.Second, 50*time.Millisecond, func() (err error) {
		if again, err = Start(context.Background(), DefaultMarket(), WithBasePort(base), WithSeed("s1")); err != nil {
			return fmt.Errorf("restart on the same ports: %w", err)
		}
		return nil
	})
	defer again.Close()
	if again.RegistryURL != m.RegistryURL || again.AAMPToken != token {
		t.Fatal("restart changed the registry URL or token")
	}
	for _, s := range again.Sellers {
		for tier, key := range s.Keys {
			if keys[s.Name][tier] != key {
				t.Fatalf("restart with the same seed changed %s's %s key", s.Name, tier)
			}
		}
	}

	other, err := Start(context.Background(), DefaultMarket(), WithSeed("s2"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	plain, err := Start(context.Background(), DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for i, s := range other.Sellers {
		if s.Keys["agency"] == "" {
			continue
		}
		if s.Keys["agency"] == keys[s.Name]["agency"] || s.Keys["agency"] == plain.Sellers[i].Keys["agency"] {
			t.Fatalf("seed s2 gave %s the same agency key as seed s1 or no seed", s.Name)
		}
	}
}
