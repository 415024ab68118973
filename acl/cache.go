package acl

import "time"

// ttlCache is a map whose entries expire, capped at max entries: when full,
// expired entries are swept and then the entries closest to expiry are
// evicted. It is not safe for concurrent use; Checker.mu guards it.
type ttlCache[V any] struct {
	max   int
	items map[string]cacheItem[V]
}

type cacheItem[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[V any](size int) *ttlCache[V] {
	return &ttlCache[V]{max: size, items: make(map[string]cacheItem[V])}
}

// get returns the live value of key; an expired entry is dropped.
func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	it, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	if !now.Before(it.expires) {
		delete(c.items, key)
		var zero V
		return zero, false
	}
	return it.value, true
}

// peek returns the value of key, expired or not.
func (c *ttlCache[V]) peek(key string) (V, bool) {
	it, ok := c.items[key]
	return it.value, ok
}

// put stores value until expires, making room first when the cache is full.
func (c *ttlCache[V]) put(key string, value V, expires, now time.Time) {
	if _, ok := c.items[key]; !ok && len(c.items) >= c.max {
		c.deleteFunc(func(k string) bool { return !now.Before(c.items[k].expires) })
		for len(c.items) >= c.max {
			c.evictSoonest()
		}
	}
	c.items[key] = cacheItem[V]{value: value, expires: expires}
}

// evictSoonest drops the entry that would expire first.
func (c *ttlCache[V]) evictSoonest() {
	var victim string
	var soonest time.Time
	first := true
	for k, it := range c.items {
		if first || it.expires.Before(soonest) {
			victim, soonest, first = k, it.expires, false
		}
	}
	delete(c.items, victim)
}

func (c *ttlCache[V]) delete(key string) { delete(c.items, key) }

// deleteFunc drops every entry whose key satisfies del.
func (c *ttlCache[V]) deleteFunc(del func(key string) bool) {
	for k := range c.items {
		if del(k) {
			delete(c.items, k)
		}
	}
}

func (c *ttlCache[V]) clear() { clear(c.items) }

func (c *ttlCache[V]) len() int { return len(c.items) }
