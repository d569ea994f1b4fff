// Package natsconf embeds the deployed NATS cluster node configuration, so
// the in-process cluster (internal/cluster) starts from the very file
// docker-compose.yml mounts.
package natsconf

import _ "embed"

// Cluster is deploy/nats/cluster.conf.
//
//go:embed cluster.conf
var Cluster []byte
