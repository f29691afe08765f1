import { layerSpans, spansOfFile } from './layer-spans.js';
import type { FileMetadata, Ztoc } from './types.js';

/** The JSON `soci ztoc info` prints (same fields as the upstream CLI). */
export interface ZtocInfo {
  version: string;
  build_tool: string;
  size: number;
  span_size: number;
  num_spans: number;
  num_files: number;
  num_multi_span_files: number;
  files: Array<{ filename: string; offset: number; size: number; type: string; start_span: number; end_span: number }>;
}

export function ztocInfo(z: Ztoc, size: number): ZtocInfo {
  const spans = layerSpans(z);
  let multi = 0;
  const files = z.toc.map((f) => {
    const { start, end } = spansOfFile(spans, f);
    if (end > start) multi++;
    return { filename: f.name, offset: f.uncompressedOffset, size: f.uncompressedSize, type: f.type, start_span: start, end_span: end };
  });
  return {
    version: z.version,
    build_tool: z.buildToolIdentifier,
    size,
    span_size: spans.spanSize,
    num_spans: z.maxSpanId + 1,
    num_files: z.toc.length,
    num_multi_span_files: multi,
    files,
  };
}

/** Canonical form of a tar path for lookups: no leading `./` or `/`, no trailing `/`. */
export function cleanPath(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
}

/** The entry for `name`; with duplicates the last one wins, as with `tar -x`. */
export function findEntry(z: Ztoc, name: string): FileMetadata | undefined {
  const want = cleanPath(name);
  for (let i = z.toc.length - 1; i >= 0; i--) if (cleanPath(z.toc[i].name) === want) return z.toc[i];
  return undefined;
}
