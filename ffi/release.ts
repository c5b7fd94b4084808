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
    "linux-x64-gnu": "5657faac651fbe5b695bc539b2401b2dd3891989b654eebf063a939fbe175774",
    "linux-arm64-gnu": "dfbc0ac1168757f7a7a1d28e0b78651d85e20db8d44a39e979ad5fc96f98e124",
  },
};
