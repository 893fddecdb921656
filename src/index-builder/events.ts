/**
 * A minimal typed event emitter whose `emit` never throws: a listener that throws (or rejects) is
 * reported to `onListenerError` and the other listeners still run, so an observer can never stop the
 * builder's loop or a search-service swap.
 */
export class SafeEmitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<(payload: never) => unknown>>();

  constructor(private readonly onListenerError: (event: string, err: unknown) => void = () => {}) {}

  on<E extends keyof Events>(event: E, listener: (payload: Events[E]) => unknown): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => unknown);
    return () => set.delete(listener as (payload: never) => unknown);
  }

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        const r = (listener as (p: Events[E]) => unknown)(payload);
        if (r instanceof Promise) r.catch((err) => this.onListenerError(String(event), err));
      } catch (err) {
        this.onListenerError(String(event), err);
      }
    }
  }
}
