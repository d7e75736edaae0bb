#!/usr/bin/python3
"""Unpacks a newer libtorch-dev from Debian's archive for scripts/check_newer_libtorch.py.

Debian 12 ships LibTorch 1.13; Debian unstable ships a current one (2.14.1 when this was written).
Its libtorch-dev package (headers and CMake files, ~3 MB) is all the check needs: nothing is
installed, nothing of it is linked or run. The pinned version is fetched and its SHA-256 checked;
when unstable has moved on and the archive no longer holds it, the version unstable's index names
now is taken instead (checked against the index's SHA-256) and said so.

Usage: fetch_libtorch_headers.py DEST
DEST ends up holding usr/include and usr/lib/.../cmake/Torch, and VERSION (the package version).
Exit 0: DEST is ready (already was, or fetched); 1: the archive could not be reached or a file
did not match its checksum (one line says which; DEST is left as it was).
"""

import hashlib
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

ARCHIVE = "http://deb.debian.org/debian"
PINNED_VERSION = "2.14.1+dfsg-1"
PINNED_FILE = "pool/main/p/pytorch/libtorch-dev_2.14.1+dfsg-1_amd64.deb"
PINNED_SHA256 = "d941cb918c760250305f2fd3c4fa63f1b86069fe6996e8c439b48af79ed27636"
INDEX = "dists/sid/main/binary-amd64/Packages.xz"


def download(path):
    with urllib.request.urlopen(f"{ARCHIVE}/{path}", timeout=120) as response:
        return response.read()


def current_in_unstable():
    """(version, file, sha256) of libtorch-dev in unstable's index."""
    index = lzma.decompress(download(INDEX)).decode("utf-8", "replace")
    for stanza in index.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Package") == "libtorch-dev":
            return fields["Version"], fields["Filename"], fields["SHA256"]
    raise RuntimeError(f"{ARCHIVE}/{INDEX}: no libtorch-dev in the index")


def main():
    if len(sys.argv) != 2:
        print("usage: fetch_libtorch_headers.py DEST", file=sys.stderr)
        return 2
    dest = os.path.abspath(sys.argv[1])
    version_file = os.path.join(dest, "VERSION")
    if os.path.isfile(version_file):
        print(f"fetch_libtorch_headers: {dest} holds libtorch-dev "
              f"{open(version_file).read().strip()}")
        return 0
    try:
        version, path, sha256 = PINNED_VERSION, PINNED_FILE, PINNED_SHA256
        try:
            package = download(path)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            version, path, sha256 = current_in_unstable()
            print(f"fetch_libtorch_headers: {PINNED_VERSION} is gone from the archive; "
                  f"taking unstable's {version}")
            package = download(path)
        if hashlib.sha256(package).hexdigest() != sha256:
            print(f"fetch_libtorch_headers: {ARCHIVE}/{path}: SHA-256 does not match",
                  file=sys.stderr)
            return 1
    except (OSError, RuntimeError, lzma.LZMAError) as error:
        print(f"fetch_libtorch_headers: {ARCHIVE}: {error} (the check against a newer LibTorch "
              "cannot run without it)", file=sys.stderr)
        return 1
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as scratch:
        deb = os.path.join(scratch, "libtorch-dev.deb")
        with open(deb, "wb") as out:
            out.write(package)
        tree = os.path.join(scratch, "tree")
        subprocess.run(["dpkg-deb", "-x", deb, tree], check=True)
        with open(os.path.join(tree, "VERSION"), "w") as out:
            out.write(version + "\n")
        if os.path.exists(dest):
            shutil.rmtree(dest)  # an unfinished earlier copy (no VERSION)
        os.rename(tree, dest)
    print(f"fetch_libtorch_headers: unpacked libtorch-dev {version} into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
