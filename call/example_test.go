package call_test

import (
	"context"
	"fmt"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/coretest"
)

func Example() {
	ctx := context.Background()

	// The callee's operations.
	reg := call.NewRegistry(nil)
	call.Query(reg, "math/add", func(_ context.Context, in struct {
		A int `json:"a"`
		B int `json:"b"`
	}) (int, error) {
		return in.A + in.B, nil
	}, call.Options{Description: "Adds two integers."})
	call.Subscription(reg, "math/count", func(_ context.Context, in struct {
		To int `json:"to"`
	}, emit func(int) error) error {
		for i := 1; i <= in.To; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, call.Options{})
	srv, _ := call.NewServer(call.Config{Registry: reg})

	// An in-memory connection stands in for a QUIC one.
	dialer, acceptor := coretest.Pipe(call.ALPN, coretest.Side{}, coretest.Side{Identity: &core.Identity{ID: "laptop"}})
	go srv.ServeConn(ctx, acceptor)
	p := call.NewPeer(dialer, call.Config{})
	defer p.Close()

	var sum int
	if err := p.Call(ctx, "math/add", map[string]int{"a": 2, "b": 40}, &sum); err != nil {
		fmt.Println(err)
	}
	fmt.Println("sum:", sum)

	for n, err := range call.SubscribeAs[int](ctx, p, "math/count", map[string]int{"to": 3}) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println("item:", n)
	}

	err := p.Call(ctx, "math/add", map[string]string{"a": "two"}, &sum)
	fmt.Println(call.ErrorCode(err))
	// Output:
	// sum: 42
	// item: 1
	// item: 2
	// item: 3
	// INVALID_INPUT
}
