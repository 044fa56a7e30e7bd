import { errorData } from '@magma-som/schemas';
import type { ErrorCode, ErrorData, ErrorIssue } from '@magma-som/schemas';

/**
 * A failure as the client will see it: a contract error code, a message safe to show, and
 * optional field issues and retry delay. Everything the server throws on purpose is one.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: {
      issues?: ErrorIssue[];
      retryAfterMs?: number;
      requestId?: string;
      /** The Allow header of a METHOD_NOT_ALLOWED answer. */
      allow?: string;
    } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get retryAfterMs(): number | undefined {
    return this.extra.retryAfterMs;
  }

  /** The body a client receives (in tRPC's `error.data`, or as a plain route's body). */
  toData(requestId?: string): ErrorData {
    const { issues, retryAfterMs } = this.extra;
    return errorData(this.code, this.message, {
      issues,
      retryAfterMs,
      requestId: requestId ?? this.extra.requestId,
    });
  }
}

/** Field issues from zod or any Standard Schema validator, reduced to path + message. */
export function issuesFrom(raw: readonly unknown[]): ErrorIssue[] {
  return raw.map((item) => {
    const issue = item as { path?: readonly unknown[]; message?: unknown };
    const path = (issue.path ?? []).map((segment) => {
      const key =
        typeof segment === 'object' && segment !== null && 'key' in segment ? segment.key : segment;
      return typeof key === 'number' ? key : String(key);
    });
    return { path, message: typeof issue.message === 'string' ? issue.message : 'invalid value' };
  });
}
