// Package loopport picks a free 127.0.0.1 TCP port for a listener that
// another process, or a server started later, must bind by number.
//
// Asking the kernel for port 0 and closing the listener hands back a port
// from the ephemeral range, the same range every outgoing connection on the
// machine draws its local port from: between the pick and the bind, a
// route dial or an HTTP client can take it, and a nats-server whose listen
// fails waits out its whole readiness timeout. Ports below that range are
// only ever taken by an explicit bind, so the window is closed in practice.
package loopport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the bottom of the band Free picks from; the top is the start of
// the kernel's ephemeral range.
const lowest = 20000

// Free returns a 127.0.0.1 port that was free when checked and lies below
// the ephemeral range.
func Free() (int, error) {
	top := ephemeralStart()
	for range 64 {
		p := lowest + rand.IntN(top-lowest)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = ln.Close()
		return p, nil
	}
	return 0, errors.New("loopport: no free port below the ephemeral range after 64 tries")
}

// Addr is Free as a host:port address.
func Addr() (string, error) {
	p, err := Free()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// ephemeralStart reads the first port of Linux's ephemeral range; elsewhere
// it assumes the IANA range, which starts at 49152.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 49152
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowest+1000 {
		return 49152
	}
	return n
}
