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
    "linux-x64-gnu": "2f3f1772d4fdf6be8b22bf64c00be151f5a0b18cc551e86ad1915879e869c1dd",
    "linux-arm64-gnu": "396b325c1044e5a5dc1a2f061dfc77106239e5201b33d76eee24581eb8818fde",
  },
};
