package memstore_test

import (
	"testing"

	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) runtime.Store { return memstore.New(memstore.Options{Changelog: true}) })
}
