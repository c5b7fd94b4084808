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
    "linux-x64-gnu": "4c88a7e0157b107443683a635b56a036ae201cdb6a7d94ff22ad99f13a637a9c",
    "linux-arm64-gnu": "405f08e4e82d3a7a415fa90c8b8c5aea4bb6a47712fd258df1468b91d5a677de",
  },
};
