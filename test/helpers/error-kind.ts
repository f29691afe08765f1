import { SociError } from '../../errors/errors.js';

/** How a promise settles, as a comparable string: 'resolved', '<kind>: <message>' or 'other: ...'. */
export async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof SociError ? `${err.kind}: ${err.message}` : `other: ${String(err)}`;
  }
}
