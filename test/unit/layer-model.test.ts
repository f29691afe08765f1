import t from 'tap';
import { layerTablesOf } from '../../fs/fuse-ops.js';
import { buildInodeTree } from '../../fs/inode-tree.js';
import { buildLayerModel } from '../../fs/layer-model.js';
import type { Ztoc } from '../../ztoc/types.js';
import { encodeZtoc } from '../../ztoc/ztoc-codec.js';
import { sampleZtoc } from '../helpers/ztoc-fixtures.js';

const LAYER = 'sha256:' + 'a'.repeat(64);
const ZTOC = 'sha256:' + 'b'.repeat(64);

/** The fixtures' hardlinks point outside the layer, which the inode tree refuses; here they are plain files. */
function mountable(files: number, spans: number): Ztoc {
  const z = sampleZtoc(files, spans);
  return { ...z, toc: z.toc.map((e) => (e.type === 'hardlink' ? { ...e, type: 'reg', linkname: '' } : e)) };
}

const z = mountable(3000, 20);
const bytes = encodeZtoc(z);
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: LAYER, size: z.compressedArchiveSize };

t.test('buildLayerModel: spans, tree and addon tables of the layer', async (t) => {
  const model = await buildLayerModel(layer, { bytes, digest: ZTOC, disableXattrs: false });
  t.equal(model.layerDigest, LAYER);
  t.equal(model.spans.ranges.length, 20);
  t.equal(model.spans.spanDigests[7], z.spanDigests[7]);
  const tree = buildInodeTree(z.toc);
  t.equal([...model.tree.byPath.keys()].join('\n'), [...tree.byPath.keys()].join('\n'), 'same paths as the inode tree of the TOC');
  const tables = layerTablesOf(tree);
  t.ok(model.tables.stat.equals(tables.stat), 'same stat table');
  t.ok(model.tables.dir.equals(tables.dir), 'same dir table');
  t.equal(model.tables.dataOffsets.join(), tables.dataOffsets.join(), 'same data offsets');
});

t.test('buildLayerModel errors name the zTOC and the layer', async (t) => {
  await t.rejects(buildLayerModel({ ...layer, size: layer.size + 1 }, { bytes, digest: ZTOC, disableXattrs: false }), {
    message: `ztoc ${ZTOC} of layer ${LAYER} is for a blob of ${layer.size} bytes, the layer has ${layer.size + 1}`,
  });
  const garbage = Buffer.from('not a flatbuffer at all, just some bytes');
  await t.rejects(buildLayerModel(layer, { bytes: garbage, digest: ZTOC, disableXattrs: false }), {
    message: new RegExp(`^ztoc ${ZTOC} of layer ${LAYER} does not decode: `),
  });
});
