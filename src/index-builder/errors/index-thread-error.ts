/**
 * The worker thread that owns a USearch index died (a native crash surfaces as the thread's `error`
 * or a non-zero exit) or reported an error for one request. `remote` carries the error name from inside
 * the thread (`IndexOptionError`, `Error`, ...). A dead thread fails every pending and later request.
 */
export class IndexThreadError extends Error {
  constructor(
    message: string,
    readonly remote?: string,
  ) {
    super(message);
    this.name = 'IndexThreadError';
  }
}
