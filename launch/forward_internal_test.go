package launch

import (
	"net"
	"strconv"
	"testing"
)

// Someone else on this machine listening at [::1]:PORT does not get the connections the user
// makes to the http://localhost:PORT harmony forward prints (browsers and curl try ::1 first):
// harmony takes a port free on both loopback addresses, and listens on both.
func TestListenNearTakesBothLoopbacks(t *testing.T) {
	squat, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback here:", err)
	}
	defer squat.Close()
	port := squat.Addr().(*net.TCPAddr).Port
	if port >= 65536-50 || port < 1024 {
		t.Skip("port at the edge")
	}
	ln, err := listenNear(port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := ln.Addr().(*net.TCPAddr).Port
	if got == port {
		t.Fatalf("harmony listens at 127.0.0.1:%d while another listener holds [::1]:%d: localhost:%d reaches it", port, port, port)
	}
	// Both addresses of the port harmony printed reach harmony.
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(got)))
		if err != nil {
			t.Fatalf("%s:%d: %v", host, got, err)
		}
		c.Close()
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
}
