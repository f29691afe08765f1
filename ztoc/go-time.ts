/**
 * Go's time.MarshalText for a UTC instant (RFC 3339 with up to nine fraction digits,
 * trailing zeros trimmed), the form the zTOC's mod_time carries (spec §1).
 */

/** An instant as Unix seconds plus nanoseconds; nsec is normalised to [0, 1e9) on output. */
export interface UnixTime {
  sec: number;
  nsec: number;
}

/** Go's MarshalText fails outside years 0..9999; upstream then stores an empty string. */
const MIN_SEC = -62167219200; // 0000-01-01T00:00:00Z
const MAX_SEC = 253402300799; // 9999-12-31T23:59:59Z

/** Normalises nsec into [0, 1e9) the way time.Unix(sec, nsec) does. */
export function normalizeTime(t: UnixTime): UnixTime {
  let { sec, nsec } = t;
  if (nsec < 0 || nsec >= 1e9) {
    const carry = Math.floor(nsec / 1e9);
    sec += carry;
    nsec -= carry * 1e9;
  }
  return { sec, nsec };
}

/** `2006-01-02T15:04:05.999999999Z`; '' when the year is outside 0..9999 (as upstream). */
export function formatGoTime(t: UnixTime): string {
  const { sec, nsec } = normalizeTime(t);
  if (!Number.isFinite(sec) || sec < MIN_SEC || sec > MAX_SEC) return '';
  // toISOString writes years 0..9999 as four digits, which is exactly Go's layout.
  const base = new Date(sec * 1000).toISOString().slice(0, 19);
  if (nsec === 0) return `${base}Z`;
  const frac = String(nsec).padStart(9, '0').replace(/0+$/, '');
  return `${base}.${frac}Z`;
}

