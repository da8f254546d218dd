package memstore

import "time"

// item is anything that can be scheduled: the head of an instance's
// queue, or one task attempt. It knows its place in the heap holding it,
// so it can be moved or removed without searching and without boxing.
type item struct {
	due      time.Time
	seq      uint64
	priority int
	heap     *indexedHeap // the heap holding it, or nil
	index    int

	entry *entry // the instance it belongs to
	task  *taskItem
}

// indexedHeap is a binary heap of items under an ordering.
type indexedHeap struct {
	items []*item
	less  func(a, b *item) bool
}

// byDue orders the timeline: earliest due, then arrival.
func byDue(a, b *item) bool {
	if !a.due.Equal(b.due) {
		return a.due.Before(b.due)
	}
	return a.seq < b.seq
}

// byUrgency orders due work: highest priority, then earliest due, then
// arrival.
func byUrgency(a, b *item) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return byDue(a, b)
}

func (h *indexedHeap) push(it *item) {
	it.heap = h
	it.index = len(h.items)
	h.items = append(h.items, it)
	h.up(it.index)
}

func (h *indexedHeap) top() *item {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

// remove takes it out of the heap.
func (h *indexedHeap) remove(it *item) {
	i := it.index
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	it.heap = nil
	it.index = -1
}

func (h *indexedHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *indexedHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.items[i], h.items[parent]) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h *indexedHeap) down(i int) {
	n := len(h.items)
	for {
		left := 2*i + 1
		if left >= n {
			return
		}
		smallest := left
		if right := left + 1; right < n && h.less(h.items[right], h.items[left]) {
			smallest = right
		}
		if !h.less(h.items[smallest], h.items[i]) {
			return
		}
		h.swap(i, smallest)
		i = smallest
	}
}
