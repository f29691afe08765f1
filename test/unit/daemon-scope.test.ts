import t from 'tap';
import { isContainerdBackendKey, listScopes, scopeFor } from '../../daemon/scope.js';

const known = new Set([' sha256:only-in-containerd', 'default mine', ' both', 'default both']);
const exists = (scope: string, key: string): boolean => known.has(`${scope} ${key}`);

t.test('containerd backend keys', async (t) => {
  t.ok(isContainerdBackendKey('k8s.io', 'k8s.io/12/extract-1 sha256:abc'));
  t.notOk(isContainerdBackendKey('k8s.io', 'k8s.io/x/extract'), 'the id part is digits');
  t.notOk(isContainerdBackendKey('k8s.io', 'default/12/extract'), 'another namespace prefix is a plain key');
  t.notOk(isContainerdBackendKey('k8s', 'k8s.io/12/x'));
});

t.test('scopeFor', async (t) => {
  t.equal(scopeFor('', 'anything', exists), '', 'no header: containerd space');
  t.equal(scopeFor('k8s.io', 'k8s.io/3/c1', exists), '', 'the CRI plugin creating a snapshot');
  t.equal(scopeFor('k8s.io', 'sha256:only-in-containerd', exists), '', 'a remote snapshot committed in the containerd space');
  t.equal(scopeFor('default', 'mine', exists), 'default', 'a direct client keeps its own key');
  t.equal(scopeFor('default', 'both', exists), 'default', 'its own space wins when both have the key');
  t.equal(scopeFor('default', 'new-key', exists), 'default', 'new keys of direct clients stay in their space');
});

t.test('listScopes', async (t) => {
  t.same(listScopes('', []), ['']);
  t.same(listScopes('default', ['name==x']), ['default']);
  t.same(listScopes('k8s.io', ['labels."containerd.io/snapshot.ref"==sha256:abc,parent==""']), ['k8s.io', '']);
});
