// Command goapp is a small program built on generated code: it runs
// orders of examples/order.fsm through checkout with real handlers (a
// fake card service that declines large amounts and fails now and then)
// on the embedded store, with four workers, and reports how each ended.
//
//	go generate ./examples/goapp/...   # refresh order/order.go from the .fsm
//	go run ./examples/goapp
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/fsmc/fsmc/examples/goapp/order"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
)

// cardService is a fake payment provider: idempotent by key, declining
// amounts over 1000, failing the first attempt of every third charge.
type cardService struct {
	mu      sync.Mutex
	charged map[string]string // idempotency key -> transaction
	calls   int
}

func (s *cardService) ChargeCard(ctx context.Context, call *runtime.Call, c order.OrderContext) (order.OrderChargeCardResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if tx, done := s.charged[call.IdempotencyKey]; done {
		return order.OrderPaidEvent{Tx: tx}, nil
	}
	if c.Amount > 1000 {
		return order.OrderDeclinedEvent{Code: "over_limit"}, nil
	}
	if s.calls%3 == 0 && call.Attempt == 1 {
		return nil, errors.New("card network timeout")
	}
	tx := fmt.Sprintf("tx-%04d", len(s.charged)+1)
	s.charged[call.IdempotencyKey] = tx
	return order.OrderPaidEvent{Tx: tx}, nil
}

func (s *cardService) SendReceipt(ctx context.Context, call *runtime.Call, c order.OrderContext) error {
	return nil // a real program would send an email here
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	engine := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	orders, err := order.RegisterOrder(ctx, engine, &cardService{charged: map[string]string{}})
	if err != nil {
		return err
	}
	workers, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = engine.Run(workers, 4); close(done) }()
	defer func() { stop(); <-done }()

	amounts := []int64{120, 45, 5000, 980, 60, 1500, 30, 700}
	for i, amount := range amounts {
		id := fmt.Sprintf("order-%d", i+1)
		// The .fsm defaults (deadline: 15m), then what this program knows.
		c := order.NewOrderContext()
		c.Customer = "customer"
		if err := orders.Start(ctx, id, c, runtime.StartOptions{}); err != nil {
			return err
		}
		if err := orders.SendSubmit(ctx, id, order.OrderSubmitEvent{Amount: amount, Customer: "customer"}); err != nil {
			return err
		}
	}
	// Wait until every order has ended.
	for {
		ended := 0
		for i := range amounts {
			o, err := orders.Get(ctx, fmt.Sprintf("order-%d", i+1))
			if err != nil {
				return err
			}
			if o.Status == runtime.Completed {
				ended++
			}
		}
		if ended == len(amounts) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("orders did not finish: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i, amount := range amounts {
		o, _ := orders.Get(ctx, fmt.Sprintf("order-%d", i+1))
		fmt.Fprintf(out, "%s  amount %5d  %-6s  tx %q\n", o.ID, amount, o.State, o.Context.Tx)
	}
	return nil
}
