package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/cluster"
)

// StartCluster starts a three-node in-process JetStream cluster from the
// deployed node configuration (deploy/nats/cluster.conf, see
// internal/cluster) with its stores under t's temporary directory, and
// closes it when t ends. Connect with Cluster.URL() (every node's URL) and
// provision with three replicas.
func StartCluster(t testing.TB) *cluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
