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
    "linux-x64-gnu": "24032c4967a1dcabd8720d5d4e9aeff02da48b99bcf041ef87109030dbbad191",
    "linux-arm64-gnu": "a611cb92c2fb1e324fb66d5d21bf839a7ad3e0d1026f4f685b8c9173f7101085",
  },
};
