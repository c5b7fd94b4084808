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
    "linux-x64-gnu": "004d7ae95f5c03cefe9af43e01f2b68b5b51198686dbd4586cccbf4f152407fb",
    "linux-arm64-gnu": "02383a27bb3523d674622e9029175122cb76b47ce8ad5c3726b729f8341911e0",
  },
};
