import t from 'tap';
import { readFileSync } from 'node:fs';
import { renderConfigDocs } from '../../config/docs.js';

t.test('README documents every config key with its current default', async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const docs = renderConfigDocs();
  t.ok(readme.includes(docs.trim()), 'README holds the output of `node dist/scripts/config-docs.js` (regenerate it)');
});
