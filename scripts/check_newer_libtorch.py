#!/usr/bin/python3
"""Compiles every translation unit against a newer LibTorch's headers and CMake files (syntax only).

The project builds and runs against Debian 12's LibTorch 1.13; users with a GPU build it against a
current one (Python torch's), whose C++ API has dropped names 1.13 had (torch::linalg::eigvalsh,
c10::get_if, ...) and which requires C++20. This check keeps both working with no second LibTorch
installed, only Debian's newer libtorch-dev unpacked (headers and CMake package, no libraries;
scripts/fetch_libtorch_headers.py): it configures the project in a scratch folder with Torch_DIR
pointing into that package (so CMakeLists.txt's own choice of C++ standard and LibTorch's flags are
the ones tested), then runs each unit's compile command with -fsyntax-only. It fails when a unit
does not compile, when the configuration did not pick the standard LibTorch asks for, or when any
LibTorch header was still taken from the system's older one (a header the newer LibTorch no longer
ships would otherwise pass unnoticed). Linking needs the libraries: not checked.

Usage: check_newer_libtorch.py PACKAGE_ROOT SCRATCH_DIR [JOBS]
PACKAGE_ROOT holds usr/include/torch and usr/lib/x86_64-linux-gnu/cmake/Torch (libtorch-dev
unpacked). Exit 0: every unit compiles; 1: some do not; 2: usage; 77: PACKAGE_ROOT is missing and
CI is not set (CTest shows the check skipped; under CI=true a missing package fails).
"""

import concurrent.futures
import glob
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SYSTEM_LIBTORCH = ("/usr/include/torch/", "/usr/include/ATen/", "/usr/include/c10/",
                   "/usr/include/caffe2/")


def version_of(include):
    """LibTorch's version as its headers give it (MAJOR.MINOR.PATCH)."""
    found = {}
    for name in ("torch/headeronly/version.h", "torch/csrc/api/include/torch/version.h"):
        path = os.path.join(include, name)
        if os.path.isfile(path):
            for line in open(path):
                m = re.match(r"#define TORCH_VERSION_(MAJOR|MINOR|PATCH) (\d+)", line)
                if m:
                    found.setdefault(m.group(1), m.group(2))
    return ".".join(found.get(k, "?") for k in ("MAJOR", "MINOR", "PATCH"))


def syntax_command(entry, depfile):
    """The unit's compile command with no object file; None for a unit without LibTorch."""
    args = shlex.split(entry["command"])
    if not any(a.endswith("/csrc/api/include") for a in args):
        return None  # a unit without LibTorch (the attention kernels)
    if entry["file"].endswith("cmake_pch.hxx.cxx"):
        return None  # the precompiled header itself: every unit includes its text below
    out = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a == "-Winvalid-pch":  # no .gch is made: GCC reads cmake_pch.hxx itself
            continue
        out.append(a)
    return out[:1] + ["-fsyntax-only", "-MD", "-MF", depfile] + out[1:]


def check_unit(entry, scratch):
    depfile = os.path.join(scratch, f"{abs(hash(entry['file']))}.d")
    command = syntax_command(entry, depfile)
    if command is None:
        return None
    done = subprocess.run(command, cwd=entry["directory"], capture_output=True, text=True)
    problems = []
    if done.returncode != 0:
        errors = [l for l in done.stderr.splitlines() if "error" in l]
        problems.append(f"{entry['file']}: does not compile:\n  " +
                        "\n  ".join(errors[:20] or done.stderr.splitlines()[-20:]))
    elif os.path.exists(depfile):
        deps = pathlib.Path(depfile).read_text().replace("\\\n", " ").split()
        old = sorted({d for d in deps if d.startswith(SYSTEM_LIBTORCH)})
        if old:
            problems.append(f"{entry['file']}: took {len(old)} header(s) from the system's "
                            f"LibTorch, e.g. {old[0]} (the newer one has no such header)")
    warnings = [l for l in done.stderr.splitlines() if "warning:" in l]
    return entry["file"], problems, warnings


def main():
    if len(sys.argv) not in (3, 4):
        print("usage: check_newer_libtorch.py PACKAGE_ROOT SCRATCH_DIR [JOBS]", file=sys.stderr)
        return 2
    root, scratch_build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    jobs = int(sys.argv[3]) if len(sys.argv) == 4 else os.cpu_count() or 1
    include = os.path.join(root, "usr/include")
    torch_dirs = glob.glob(os.path.join(root, "usr/lib/*/cmake/Torch"))
    if not os.path.isfile(os.path.join(include, "torch/csrc/api/include/torch/torch.h")) or \
            not torch_dirs:
        message = (f"check_newer_libtorch: {root}: no unpacked libtorch-dev there "
                   "(scripts/install-deps.sh fetches it: scripts/fetch_libtorch_headers.py)")
        print(message, file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 77
    version = version_of(include)
    source = pathlib.Path(__file__).resolve().parent.parent
    configure = ["cmake", "-S", str(source), "-B", scratch_build, f"-DTorch_DIR={torch_dirs[0]}",
                 "-DCMAKE_BUILD_TYPE=Release", "-DPRIVAUDIT_BUILD_FUZZERS=OFF"]
    if shutil.which("ninja") and not os.path.exists(os.path.join(scratch_build, "CMakeCache.txt")):
        configure += ["-G", "Ninja"]
    done = subprocess.run(configure, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"check_newer_libtorch: configuring against LibTorch {version} failed:\n" +
              "\n".join((done.stdout + done.stderr).splitlines()[-30:]))
        return 1
    print("\n".join(l for l in done.stdout.splitlines() if "privaudit:" in l))
    entries = json.load(open(os.path.join(scratch_build, "compile_commands.json")))
    # The standard LibTorch's CMake package asks for (2.14: 20) must be the one every unit gets.
    config = os.path.join(torch_dirs[0], "TorchConfig.cmake")
    m = re.search(r"CXX_STANDARD (\d+)", open(config).read()) if os.path.isfile(config) else None
    wanted = int(m.group(1)) if m else None
    failed = 0
    standard_wrong = False
    if wanted and wanted > 17:
        wrong = [e["file"] for e in entries if f"-std=c++{wanted}" not in e["command"] and
                 f"-std=gnu++{wanted}" not in e["command"]]
        if wrong:
            print(f"check_newer_libtorch: LibTorch {version} asks for C++{wanted}, but "
                  f"{wrong[0]} (and {len(wrong) - 1} more) compile under another standard")
            standard_wrong = True
    units = 0
    with tempfile.TemporaryDirectory() as scratch, \
            concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(lambda e: check_unit(e, scratch), entries):
            if result is None:
                continue
            name, problems, warnings = result
            units += 1
            for p in problems:
                print(p)
            for w in warnings[:5]:
                print(f"{name}: {w}")
            failed += bool(problems)
    print(f"check_newer_libtorch: {units - failed} of {units} units compile against "
          f"LibTorch {version}'s headers ({root})")
    return 1 if failed or standard_wrong or units == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
