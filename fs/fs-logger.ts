/** The logging the filesystem needs; a pino logger fits. */
export interface FsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: FsLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
