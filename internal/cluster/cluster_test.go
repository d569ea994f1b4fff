package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/cluster"
)

func TestClusterFromDeployedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEALFLOW", Subjects: []string{"x.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	l, err := c.WaitStreamLeader(ctx, "DEALFLOW")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s", c.Nodes[l].Name)
	c.Kill(l)
	l2, err := c.WaitStreamLeader(ctx, "DEALFLOW", l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "x.y", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(l); err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %s; restarted %s", c.Nodes[l2].Name, c.Nodes[l].Name)
}
