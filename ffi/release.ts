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
    "linux-x64-gnu": "e2b0ed7cabc58f947f689c3e28d81af1885bff11bea1443cc0610ffd2033d558",
    "linux-arm64-gnu": "bdaf4b67118ee2ac60bac0147bd8e95ccc327c669d9e678afc4afff5b2c74d26",
  },
};
