import { AuthenticationError, MagmaError } from '@magma-som/sdk';

export interface ErrorReport {
  /** The typed error's name and message, e.g. "InvalidMarksError: mark 1 ... outside ...". */
  readonly text: string;
  /** Code, status and request id, for a bug report. */
  readonly detail: string;
  readonly retryable: boolean;
  readonly needsApiKey: boolean;
}

/** What the page shows for a failed call: the SDK's typed error, as it is. */
export function reportError(error: unknown): ErrorReport {
  if (error instanceof MagmaError) {
    const detail = [
      `code ${error.code}`,
      error.status === undefined ? '' : `HTTP ${error.status}`,
      error.requestId === undefined ? '' : `request ${error.requestId}`,
    ];
    return {
      text: `${error.name}: ${error.message}`,
      detail: detail.filter((part) => part !== '').join(' · '),
      retryable: error.retryable,
      needsApiKey: error instanceof AuthenticationError,
    };
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { text, detail: '', retryable: false, needsApiKey: false };
}
