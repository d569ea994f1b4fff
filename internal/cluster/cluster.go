// Package cluster runs a JetStream cluster of in-process nats-server nodes
// on loopback, started from the deployed node configuration
// (deploy/nats/cluster.conf), so what the tests, the demo and the bench
// exercise is the cluster docker-compose.yml deploys: same cluster name,
// JetStream limits, accounts and lame-duck settings. Only what cannot be
// the same on one machine is remapped: listen and cluster ports (free
// 127.0.0.1 ports below the ephemeral range, see internal/loopport), routes
// (the three local cluster ports), store_dir (a directory per node),
// server_name (n1..nN), the monitoring port (off) and the $SYS password (a
// random one instead of the environment reference).
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	natsconf "github.com/dealflow/dealflow/deploy/nats"
	"github.com/dealflow/dealflow/internal/loopport"
)

// Options configure Start.
type Options struct {
	// Nodes is the cluster size (default 3).
	Nodes int
	// Dir holds the nodes' config and store directories; empty means a
	// temporary directory that Close removes.
	Dir string
	// Config is the node configuration (default deploy/nats/cluster.conf).
	Config []byte
}

// Node is one cluster member.
type Node struct {
	// Name is the server_name: n1, n2, ...
	Name string
	// Port and ClusterPort stay the same across restarts.
	Port        int
	ClusterPort int
	// StoreDir is the node's JetStream store, kept across restarts.
	StoreDir string

	mu     sync.Mutex
	server *server.Server
}

// Server returns the running server, or nil while the node is down.
func (n *Node) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.server
}

// ClientURL is the node's client URL (also while it is down).
func (n *Node) ClientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// Cluster is a running cluster.
type Cluster struct {
	Nodes   []*Node
	dir     string
	tempDir bool
	conf    string // the rewritten config file every node parses
}

// Start writes the node configuration, starts every node and waits until
// the JetStream meta group has a leader that every node follows.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Config == nil {
		o.Config = natsconf.Cluster
	}
	c := &Cluster{dir: o.Dir}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "dealflow-cluster-")
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.dir, c.tempDir = d, true
	}
	// The deployed file reads the $SYS password from the environment; a
	// random literal replaces the reference so nothing depends on the
	// caller's environment.
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	conf := bytes.ReplaceAll(o.Config, []byte("$SYS_PASSWORD"), []byte(`"`+hex.EncodeToString(pw)+`"`))
	c.conf = filepath.Join(c.dir, "cluster.conf")
	if err := os.WriteFile(c.conf, conf, 0o600); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// A node whose listen fails (a port taken between the pick and the
	// bind) never becomes ready: start the whole cluster again on fresh
	// ports and empty stores, a few times.
	var err error
	for attempt := range 3 {
		if err = c.startFresh(o.Nodes, attempt); err == nil {
			break
		}
		for i := range c.Nodes {
			c.Kill(i)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NodeOptions parses the deployed configuration and remaps it for node i.
func (c *Cluster) NodeOptions(i int) (*server.Options, error) {
	opts, err := server.ProcessConfigFile(c.conf)
	if err != nil {
		return nil, fmt.Errorf("cluster: config: %w", err)
	}
	n := c.Nodes[i]
	opts.ServerName = n.Name
	opts.Host, opts.Port = "127.0.0.1", n.Port
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", n.ClusterPort
	opts.Routes = nil
	for _, m := range c.Nodes {
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", m.ClusterPort)})
	}
	opts.StoreDir = n.StoreDir
	// A Kill is an abrupt Shutdown; lame duck only applies to signals.
	opts.NoSigs, opts.NoLog = true, true
	return opts, nil
}

// startFresh picks ports for n nodes and starts them with stores under a
// directory of their own for this attempt.
func (c *Cluster) startFresh(n, attempt int) error {
	c.Nodes = nil
	for i := range n {
		p, err := loopport.Free()
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		cp, err := loopport.Free()
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		store := filepath.Join(c.dir, fmt.Sprintf("n%d", i+1))
		if attempt > 0 {
			store = filepath.Join(c.dir, fmt.Sprintf("try%d", attempt), fmt.Sprintf("n%d", i+1))
		}
		c.Nodes = append(c.Nodes, &Node{Name: fmt.Sprintf("n%d", i+1), Port: p, ClusterPort: cp, StoreDir: store})
	}
	for i := range c.Nodes {
		if err := c.start(i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) start(i int) error {
	opts, err := c.NodeOptions(i)
	if err != nil {
		return err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("cluster: node %s: %w", c.Nodes[i].Name, err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("cluster: node %s not ready within 20s", c.Nodes[i].Name)
	}
	n := c.Nodes[i]
	n.mu.Lock()
	n.server = s
	n.mu.Unlock()
	return nil
}

// URLs are the client URLs of every node, in node order.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.ClientURL()
	}
	return out
}

// URL is every node's client URL, comma-separated (the form --nats takes).
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// Kill shuts node i down at once (no lame duck): its clients see the
// connection drop and reconnect to another node.
func (c *Cluster) Kill(i int) {
	n := c.Nodes[i]
	n.mu.Lock()
	s := n.server
	n.server = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts node i again with the same ports and store directory.
func (c *Cluster) Restart(i int) error {
	if c.Nodes[i].Server() != nil {
		return fmt.Errorf("cluster: node %s is running", c.Nodes[i].Name)
	}
	return c.start(i)
}

// Index returns the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the running node leading stream in the
// clients' account, or -1 while it has none.
func (c *Cluster) StreamLeader(stream string) int {
	for i, n := range c.Nodes {
		s := n.Server()
		if s == nil {
			continue
		}
		if s.JetStreamIsStreamLeader(clientAccount(s), stream) {
			return i
		}
	}
	return -1
}

// clientAccount is the account clients without credentials land in.
func clientAccount(s *server.Server) string {
	if a := s.GlobalAccount(); a != nil {
		return a.Name
	}
	return server.DEFAULT_GLOBAL_ACCOUNT
}

// WaitStreamLeader waits until stream has a leader on a running node other
// than the excluded ones, and returns its index.
func (c *Cluster) WaitStreamLeader(ctx context.Context, stream string, exclude ...int) (int, error) {
	for {
		if i := c.StreamLeader(stream); i >= 0 && !contains(exclude, i) {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("cluster: stream %s has no leader: %w", stream, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitReady waits until the JetStream meta group has a leader and every
// running node is current with it.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		leader, current, running := false, 0, 0
		for _, n := range c.Nodes {
			s := n.Server()
			if s == nil {
				continue
			}
			running++
			if s.JetStreamIsLeader() {
				leader = true
			}
			if s.JetStreamIsCurrent() {
				current++
			}
		}
		if leader && current == running {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("cluster: no JetStream meta leader: " + ctx.Err().Error())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close shuts every node down and removes a temporary directory. It is
// idempotent.
func (c *Cluster) Close() {
	for i := range c.Nodes {
		c.Kill(i)
	}
	if c.tempDir && c.dir != "" {
		_ = os.RemoveAll(c.dir)
		c.dir = ""
	}
}

func contains(l []int, x int) bool {
	for _, v := range l {
		if v == x {
			return true
		}
	}
	return false
}
