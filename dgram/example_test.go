package dgram_test

import (
	"context"
	"fmt"

	"github.com/quicconn/quicconn/dgram"
)

func ExampleQueue() {
	q := dgram.NewQueue(2)
	for _, d := range []string{"one", "two", "three"} {
		q.Put([]byte(d)) // "three" evicts "one"
	}
	ctx := context.Background()
	for q.Len() > 0 {
		b, _ := q.Get(ctx)
		fmt.Println(string(b))
	}
	fmt.Printf("%+v\n", q.Stats())

	q.Close(nil)
	_, err := q.Get(ctx)
	fmt.Println(err)
	// Output:
	// two
	// three
	// {Received:3 Dropped:1 Discarded:0 Queued:0}
	// quicconn: connection lost
}
