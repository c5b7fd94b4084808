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
    "linux-x64-gnu": "a98e1856593893e6116aef301661bf79f15aa493b50dbbba37b87b3d702080bf",
    "linux-arm64-gnu": "fcd0fc5202e3ddd503f4c9584794ea87162e01dcf3671bcc7831d4afa326b40e",
  },
};
