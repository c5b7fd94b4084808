//! Builds libedgerun (shim/) and, for tests only, the hbDNN simulator (tests/sim/).
//!   zig build                                 -> zig-out/lib/libedgerun.so
//!   zig build -Dtarget=aarch64-linux-gnu      -> the same for the board (glibc 2.28 floor)
//!   zig build sim                             -> zig-out/sim/{libhbucp.so,libdnn.so}
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
    "shim/backends/ort.c",
    "shim/backends/hbdnn.c",
};

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

    const shim = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    shim.addIncludePath(b.path("shim/include"));
    shim.addIncludePath(b.path("shim"));
    shim.addCSourceFiles(.{ .files = &shim_sources, .flags = &c_flags });
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
    for ([_]*std.Build.Step.Compile{ ucp, dnn }) |artifact| {
        const install = b.addInstallArtifact(artifact, .{ .dest_dir = .{ .override = sim_dir } });
        sim_step.dependOn(&install.step);
    }

    // zig build sim-test: the simulator's own C smoke test (tests/sim/sim_selftest.c).
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
    const sim_test_step = b.step("sim-test", "Build and run the simulator's C selftest");
    sim_test_step.dependOn(&selftest_install.step);
    // A cross build (-Dtarget=aarch64-...) only builds the selftest; it cannot run here.
    if (target.result.cpu.arch == builtin.cpu.arch and target.result.os.tag == builtin.os.tag) {
        const selftest_run = b.addRunArtifact(selftest);
        selftest_run.step.dependOn(sim_step);
        sim_test_step.dependOn(&selftest_run.step);
    }
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
