/**
 * The memory backend's channels in the order they may expire (a binary min-heap), so the expired
 * ones are freed as the backend is used: each check costs nothing while none is due, and each
 * channel is looked at about once per `ttlSeconds` — no scan of all channels, no timer.
 */
export interface Expiring {
  /** Epoch ms; moves later as the channel gets events. */
  expiresAt: number;
}

interface Entry<Value> {
  /** When to look again: the value's expiresAt when it was queued (or earlier). */
  at: number;
  key: string;
  value: Value;
}

export class ExpiryQueue<Value extends Expiring> {
  private heap: Entry<Value>[] = [];

  /**
   * `current` says which value a key holds now (a stale entry is dropped), `remove` frees an
   * expired one.
   */
  constructor(
    private current: (key: string) => Value | undefined,
    private remove: (key: string) => void,
  ) {}

  /** Queues a new value, to be looked at from `at` on (when its expiry may first be set). */
  watch(key: string, value: Value, at: number): void {
    this.push({ at, key, value });
  }

  /** Frees every value expired by `now`; those whose expiry moved are queued again for then. */
  sweep(now: number): void {
    while (this.heap.length > 0 && (this.heap[0] as Entry<Value>).at <= now) {
      const entry = this.pop();
      if (this.current(entry.key) !== entry.value) continue; // replaced or already freed
      if (entry.value.expiresAt <= now) this.remove(entry.key);
      else {
        entry.at = entry.value.expiresAt;
        this.push(entry);
      }
    }
  }

  clear(): void {
    this.heap = [];
  }

  private push(entry: Entry<Value>): void {
    const heap = this.heap;
    let index = heap.push(entry) - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if ((heap[parent] as Entry<Value>).at <= entry.at) break;
      heap[index] = heap[parent] as Entry<Value>;
      index = parent;
    }
    heap[index] = entry;
  }

  private pop(): Entry<Value> {
    const heap = this.heap;
    const top = heap[0] as Entry<Value>;
    const last = heap.pop() as Entry<Value>;
    if (heap.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && (heap[right] as Entry<Value>).at < (heap[left] as Entry<Value>).at ? right : left;
      if ((heap[child] as Entry<Value>).at >= last.at) break;
      heap[index] = heap[child] as Entry<Value>;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}
