// Package httptest holds HTTP helpers shared by tests of the RPC server and
// the roles that serve it.
package httptest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// PostDeclaredLength sends a POST whose headers declare a body of length
// bytes but sends none of it, and returns the server's answer and its body.
// A server that enforces a body limit answers from the Content-Length alone;
// sending the body with a normal client races the server closing the
// connection early (the client sees a reset while still writing).
func PostDeclaredLength(addr string, length int) (*http.Response, []byte, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: kestrel\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", length); err != nil {
		return nil, nil, err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
