/**
 * Labels of containerd's remote-snapshot handshake (containerd-integration.md §4): what
 * `soci image rpull`, nerdctl and the CRI plugin put on a layer's Prepare, and what the daemon
 * reads to serve that layer itself.
 */
export const TARGET_SNAPSHOT_LABEL = 'containerd.io/snapshot.ref';
export const LABEL_IMAGE_REF = 'containerd.io/snapshot/cri.image-ref';
export const LABEL_MANIFEST_DIGEST = 'containerd.io/snapshot/cri.manifest-digest';
export const LABEL_LAYER_DIGEST = 'containerd.io/snapshot/cri.layer-digest';
export const LABEL_IMAGE_LAYERS = 'containerd.io/snapshot/cri.image-layers';
export const LABEL_SOCI_INDEX_DIGEST = 'containerd.io/snapshot/remote/soci.index.digest';
