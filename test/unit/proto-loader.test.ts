import t from 'tap';
import type { ServiceClientConstructor } from '@grpc/grpc-js';
import { loadProtos, serviceConstructor } from '../../fetcher/proto-loader.js';

function methods(ctor: ServiceClientConstructor): string[] {
  return Object.values(ctor.service).map((m) => m.path).sort();
}

t.test('services and methods', async (t) => {
  const root = loadProtos();
  t.not(loadProtos(), root, 'a fresh object per call');
  const snap = serviceConstructor(root, 'containerd.services.snapshots.v1.Snapshots');
  t.same(methods(snap), ['Cleanup', 'Commit', 'List', 'Mounts', 'Prepare', 'Remove', 'Stat', 'Update', 'Usage', 'View']
    .map((m) => `/containerd.services.snapshots.v1.Snapshots/${m}`).sort());
  t.equal(snap.service.List.responseStream, true);
  const content = serviceConstructor(root, 'containerd.services.content.v1.Content');
  t.ok(content.service.Write.requestStream && content.service.Write.responseStream, 'Write is bidirectional');
  const cri = serviceConstructor(root, 'runtime.v1.ImageService');
  t.same(methods(cri), ['ImageFsInfo', 'ImageStatus', 'ListImages', 'PullImage', 'RemoveImage'].map((m) => `/runtime.v1.ImageService/${m}`).sort());
  t.throws(() => serviceConstructor(root, 'containerd.services.nope.v1.Nope'), /not found/);
});

t.test('wire format uses the upstream field numbers', async (t) => {
  const root = loadProtos();
  const mounts = serviceConstructor(root, 'containerd.services.snapshots.v1.Snapshots').service.Mounts;
  // MountsResponse{mounts=1: Mount{type=1 "overlay", source=2 "o", options=4 ["ro"]}}
  const wire = Buffer.from([0x0a, 0x10, 0x0a, 0x07, ...Buffer.from('overlay'), 0x12, 0x01, 0x6f, 0x22, 0x02, 0x72, 0x6f]);
  t.same(mounts.responseDeserialize(wire), { mounts: [{ type: 'overlay', source: 'o', target: '', options: ['ro'] }] });
  const write = serviceConstructor(root, 'containerd.services.content.v1.Content').service.Write;
  // WriteContentRequest{action=1 COMMIT(2), total=3 5, labels=7 {"k":"v"}}
  const enc = write.requestSerialize({ action: 'COMMIT', total: 5, labels: { k: 'v' } });
  t.same([...enc], [0x08, 0x02, 0x18, 0x05, 0x3a, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
  const pull = serviceConstructor(root, 'runtime.v1.ImageService').service.PullImage;
  // PullImageRequest{image=1 ImageSpec{image=1 "x", runtime_handler=19 "r"}}
  t.same([...pull.requestSerialize({ image: { image: 'x', runtime_handler: 'r' } })], [0x0a, 0x07, 0x0a, 0x01, 0x78, 0x9a, 0x01, 0x01, 0x72]);
  const info = serviceConstructor(root, 'containerd.services.snapshots.v1.Snapshots').service.Stat;
  // StatSnapshotResponse{info=1 Info{name=1 "n", kind=3 COMMITTED(3), labels=6 {"a":"b"}}}
  const statWire = Buffer.from([0x0a, 0x0d, 0x0a, 0x01, 0x6e, 0x18, 0x03, 0x32, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x62]);
  const decoded = info.responseDeserialize(statWire) as { info: { name: string; kind: string; labels: Record<string, string> } };
  t.same([decoded.info.name, decoded.info.kind, decoded.info.labels], ['n', 'COMMITTED', { a: 'b' }]);
});
