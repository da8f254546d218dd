package redistest

import (
	"net"
	"testing"
)

// Proxy listens on a free local port and, for each connection made to
// it, dials upstream and runs relay(client, server) on a goroutine of
// its own: relay carries the bytes each way, with whatever fault the
// test wants (a delay, a lost reply). It returns the address to give
// the client; the listener closes when the test ends.
func Proxy(t testing.TB, upstream string, relay func(client, server net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			go relay(client, server)
		}
	}()
	return l.Addr().String()
}
