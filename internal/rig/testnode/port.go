package testnode

import "net"

// ServePort listens on a loopback port, as a container of a test node's pod
// would, and runs handle on its own goroutine for each connection, closing
// the connection when handle returns. It serves until the listener closes.
func ServePort(handle func(net.Conn)) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				handle(conn)
			}()
		}
	}()
	return ln, nil
}
