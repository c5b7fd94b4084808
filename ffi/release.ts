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
    "linux-x64-gnu": "cb1bdfd01cba4bd1c8ec7abecf72a767d2e19bdc9881f0920045c5daa10dde6f",
    "linux-arm64-gnu": "f191c4cb3e0ef193e37f14bec912d6fc2cff6131b8f500da623a85fd2497b54f",
  },
};
