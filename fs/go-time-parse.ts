/**
 * Parses the zTOC's mod_time (Go time.MarshalText: RFC 3339 with up to nine fraction
 * digits) back into Unix seconds plus nanoseconds, exactly: Date would drop the nanoseconds.
 */
import { invalidArgument } from '../errors/errors.js';
import type { UnixTime } from '../ztoc/go-time.js';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** '' (what upstream stores when Go cannot format the time) is the Unix epoch. */
export function parseGoTime(s: string): UnixTime {
  if (s === '') return { sec: 0, nsec: 0 };
  const m = RFC3339.exec(s);
  if (!m) throw invalidArgument(`mod time ${JSON.stringify(s)} is not RFC 3339`);
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    throw invalidArgument(`mod time ${JSON.stringify(s)} has a field out of range`);
  }
  const nsec = m[7] ? Number(m[7].padEnd(9, '0')) : 0;
  let offset = 0;
  if (m[8] !== 'Z') {
    const sign = m[8][0] === '-' ? -1 : 1;
    offset = sign * (Number(m[8].slice(1, 3)) * 3600 + Number(m[8].slice(4, 6)) * 60);
  }
  const sec = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  return { sec, nsec };
}
