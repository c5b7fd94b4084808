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
    "linux-x64-gnu": "bffee6ef96b1025fc88c0fbb2f828a8e2def8005fff748b274ff7d772a054b76",
    "linux-arm64-gnu": "bbf64ab1d8b7fbdcf7be031504002266992e7b6ee86c703528b1ef75949e4d65",
  },
};
