import t from 'tap';
import { formatGoTime, normalizeTime } from '../../ztoc/go-time.js';
import { parsePaxTime } from '../../ztoc/pax.js';

t.test('formatGoTime matches Go time.MarshalText in UTC', async (t) => {
  const cases: Array<[number, number, string]> = [
    [0, 0, '1970-01-01T00:00:00Z'],
    [1614834367, 123456789, '2021-03-04T05:06:07.123456789Z'],
    [1614834367, 120000000, '2021-03-04T05:06:07.12Z'],
    [1614834367, 1, '2021-03-04T05:06:07.000000001Z'],
    [951782400, 0, '2000-02-29T00:00:00Z'],
    [-31536000, 0, '1969-01-01T00:00:00Z'],
    [-1, -500000000, '1969-12-31T23:59:58.5Z'],
    [253402300799, 999999999, '9999-12-31T23:59:59.999999999Z'],
    [-62167219200, 0, '0000-01-01T00:00:00Z'],
    // Go's MarshalText fails outside years 0..9999; upstream then stores ''.
    [253402300800, 0, ''],
    [-62167219201, 0, ''],
  ];
  for (const [sec, nsec, want] of cases) t.equal(formatGoTime({ sec, nsec }), want, `${sec}.${nsec}`);
});

t.test('normalizeTime carries nanoseconds like time.Unix', async (t) => {
  t.same(normalizeTime({ sec: -1, nsec: -500000000 }), { sec: -2, nsec: 500000000 });
  t.same(normalizeTime({ sec: 5, nsec: 1500000000 }), { sec: 6, nsec: 500000000 });
  t.same(normalizeTime({ sec: 5, nsec: 0 }), { sec: 5, nsec: 0 });
});

t.test('parsePaxTime follows Go parsePAXTime', async (t) => {
  const fmt = (s: string) => {
    const v = parsePaxTime(s);
    return v === null ? null : formatGoTime(v);
  };
  t.equal(fmt('1614834367.123456789'), '2021-03-04T05:06:07.123456789Z');
  t.equal(fmt('1614834367.1234567899'), '2021-03-04T05:06:07.123456789Z', 'digits beyond 9 truncated');
  t.equal(fmt('1614834367.5'), '2021-03-04T05:06:07.5Z');
  t.equal(fmt('1614834367'), '2021-03-04T05:06:07Z');
  t.equal(fmt('12.'), '1970-01-01T00:00:12Z');
  t.equal(fmt('-1.5'), '1969-12-31T23:59:58.5Z', 'negative fraction subtracts');
  t.equal(fmt('-0.5'), '1969-12-31T23:59:59.5Z');
  t.equal(fmt('-1.0000000001'), '1969-12-31T23:59:59Z', 'truncation before sign correction');
  t.equal(fmt('abc'), null);
  t.equal(fmt('.5'), null);
  t.equal(fmt('1.x'), null);
  t.equal(fmt('1.-5'), null);
});
