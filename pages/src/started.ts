/**
 * A request started before React first renders, whose answer that render can read at once
 * if it is already in (rather than a frame or two later, after an effect has awaited it).
 */
export class Started<T> {
  private answer: { value: T } | null = null;

  constructor(readonly promise: Promise<T>) {
    // A failure is read (and handled) by whoever awaits `promise`.
    promise.then(
      (value) => (this.answer = { value }),
      () => undefined,
    );
  }

  /** The answer, if it is in; null while pending or after a failure. */
  get now(): T | null {
    return this.answer ? this.answer.value : null;
  }
}
