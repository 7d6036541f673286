/** The payload every benchmark sends: a typical small JSON event (~110 bytes) with an id and a name. */

export interface BenchEvent {
  /** A Redis-style stream id, the id edge-sse would give this event. */
  id: string;
  type: string;
  object: Record<string, unknown>;
  /** `object` as JSON text: what edge-sse stores and encodes per connection. */
  json: string;
}

export const EVENT_TYPE = 'order.updated';

/** `count` distinct events (cycled through by the benchmarks, so ids and payloads vary). */
export function makeEvents(count = 1024): BenchEvent[] {
  return Array.from({ length: count }, (_, index) => {
    const object = {
      orderId: `ord_${(0x8f14e45f + index).toString(16)}`,
      status: index % 3 === 0 ? 'shipped' : 'packed',
      total: 100 + (index % 97) + 0.95,
      items: 1 + (index % 5),
      carrier: 'DHL',
      updatedAt: 1732780000000 + index,
    };
    return { id: `${1732780000000 + index}-0`, type: EVENT_TYPE, object, json: JSON.stringify(object) };
  });
}
