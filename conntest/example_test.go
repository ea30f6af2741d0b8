package conntest_test

import (
	"fmt"
	"time"

	"github.com/quicconn/quicconn/conntest"
)

func ExampleNewPipe() {
	a, b := conntest.NewPipe(conntest.Link{Delay: time.Millisecond, MTU: 1200})
	defer a.Close()
	defer b.Close()

	a.WriteTo([]byte("hello"), b.LocalAddr())
	a.WriteTo(make([]byte, 1500), b.LocalAddr()) // above the MTU: dropped

	buf := make([]byte, 1500)
	n, from, err := b.ReadFrom(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s from %v\n", buf[:n], from)
	fmt.Printf("%+v\n", a.Stats())
	// Output:
	// hello from 127.0.0.1:1
	// {Sent:2 Delivered:1 Dropped:1 Duplicated:0 Reordered:0}
}
