package main

import (
	"context"
	"testing"

	"github.com/fsmc/fsmc/examples/goapp/order"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
)

// paidUnderCancel embeds Paid, which ChargeCard emits, one level below
// Cancel, which it does not: Go promotes the shallower Cancel's methods
// where both have one, but only Paid has the result's method.
type paidUnderCancel struct {
	order.OrderCancelEvent
	paid
}

type paid struct{ order.OrderPaidEvent }

// embeddingCharger returns paidUnderCancel from ChargeCard.
type embeddingCharger struct{ cardService }

func (*embeddingCharger) ChargeCard(context.Context, *runtime.Call, order.OrderContext) (order.OrderChargeCardResult, error) {
	return paidUnderCancel{paid: paid{order.OrderPaidEvent{Tx: "tx-embedded"}}}, nil
}

// TestEmbeddedResultIsTheEventItEmbeds: a result type that has the
// sealed interface's method only by embedding an event the action emits
// is that event, whatever else it embeds, so the typed API cannot return
// an event the action does not emit.
func TestEmbeddedResultIsTheEventItEmbeds(t *testing.T) {
	ctx := context.Background()
	engine := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	orders, err := order.RegisterOrder(ctx, engine, &embeddingCharger{})
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.Start(ctx, "o", order.NewOrderContext(), runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := orders.SendSubmit(ctx, "o", order.OrderSubmitEvent{Amount: 10}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := engine.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	o, err := orders.Get(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	if o.State != "Done" || o.Context.Tx != "tx-embedded" {
		t.Fatalf("the order is in %s (%s, %q), tx %q; want Done, paid by the embedded Paid", o.State, o.Status, o.Failure, o.Context.Tx)
	}
}
