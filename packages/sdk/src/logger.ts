/** How much the client logs. */
export type LogLevel = 'off' | 'error' | 'warn' | 'info' | 'debug';

/** Where log lines go: console by default, or pino, winston, ... (same method names). */
export interface Logger {
  error(message: string, details?: object): void;
  warn(message: string, details?: object): void;
  info(message: string, details?: object): void;
  debug(message: string, details?: object): void;
}

const RANK: Record<LogLevel, number> = { off: 0, error: 1, warn: 2, info: 3, debug: 4 };

/** The environment variable that sets the log level when the options do not. */
export const LOG_ENV = 'MAGMA_SDK_LOG';

function isLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && value in RANK;
}

/** The level from the options, else MAGMA_SDK_LOG (where the runtime has env vars), else warn. */
export function resolveLogLevel(level: LogLevel | undefined): LogLevel {
  if (level !== undefined) return level;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env?.[LOG_ENV];
  const fromEnv = env?.trim().toLowerCase();
  return isLevel(fromEnv) ? fromEnv : 'warn';
}

/** A logger that drops lines above `level`. Each line is prefixed so it can be told apart. */
export function levelledLogger(level: LogLevel, logger: Logger = console): Logger {
  const on = (wanted: LogLevel) => RANK[wanted] <= RANK[level];
  const line =
    (wanted: Exclude<LogLevel, 'off'>) =>
    (message: string, details?: object): void => {
      if (!on(wanted)) return;
      if (details === undefined) logger[wanted](`[magma-som-sdk] ${message}`);
      else logger[wanted](`[magma-som-sdk] ${message}`, details);
    };
  return { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug') };
}

export function isLogLevel(value: unknown): value is LogLevel {
  return isLevel(value);
}
