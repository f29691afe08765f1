import type { FsLogger } from '../../fs/fs-logger.js';

/** An FsLogger that keeps every line, for assertions on what was logged. */
export class CapturingLogger implements FsLogger {
  readonly lines: Array<{ level: string; obj: object; msg: string }> = [];
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
}
