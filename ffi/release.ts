/**
 * The release this source belongs to: its version and the SHA-256 of the libedgerun.so that
 * `make dist` builds for each platform (reproducibly). Written by `make dist` (scripts/dist.sh);
 * a download-on-first-use is kept only when its bytes hash to the value pinned here.
 * @module
 */

/** Version and pinned SHA-256 of each prebuilt libedgerun.so, by platform tag. */
export const RELEASE: { readonly version: string; readonly sha256: Readonly<Record<string, string>> } = {
  version: "0.1.0",
  sha256: {
    "linux-x64-gnu": "486e9cd1508274bb6e5be55edfc15ee4c2d85eb7d304e1781add95350c6d8d8a",
    "linux-arm64-gnu": "0864e06984c9676aa9754311f52a3de41a1d417d988946cfe57d21d6aa0f2b3c",
  },
};
