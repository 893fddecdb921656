/** One problem with a request, with the path of the field (`texts[3]`, `dealIds`, `Idempotency-Key`). */
export interface HttpIssue {
  path: string;
  message: string;
}

/**
 * An error the API answers as `{ error: { code, message, issues? } }` with `status` (and `headers`,
 * e.g. Retry-After on 429). Anything else that reaches the error handler is a 500 whose details are
 * logged, not sent.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: readonly HttpIssue[],
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
